"""The toolchain every generated CI definition installs, in one place: what `make test`
needs (pyproject's Python; the Node.js that aws-cdk-lib's jsii and the pinned cdk CLI run on,
the version this project is developed and checked with)."""

PYTHON = "3.11"
NODE = "20"
