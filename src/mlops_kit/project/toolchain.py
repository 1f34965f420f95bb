"""The toolchain every generated CI definition installs, in one place: what `make test` and a
project's CI need (pyproject's Python; the Node.js that aws-cdk-lib's jsii and the pinned cdk
CLI run on, the version this project is developed and checked with; that CLI's version, equal
to package.json's pin: tests/test_project_ci.py)."""

PYTHON = "3.11"
NODE = "20"
CDK_CLI = "2.1148.1"
