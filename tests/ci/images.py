"""What each CI image provides, one row per image with where its contents are stated.

A `Tool` is either a program of this machine that behaves like the image's (`host`), a shim
that emulates or records it (`handler`: `tests/ci/shim.py`), or a program the image has that
cannot run here (`missing` says why). Only programs our steps use, or that `make test` needs,
are listed: a program not in a row is not on that image's PATH.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.cloudsim.container import Dockerfile


@dataclass(frozen=True)
class Tool:
    host: str = ""                 # this machine's stand-in, run as is
    handler: str = ""              # or the shim that emulates / records it
    version: str = ""              # the version the image ships
    missing: str = ""              # or why it cannot run here
    apt: tuple[tuple[str, str], ...] = ()   # (capability, the Debian package that adds it)


@dataclass(frozen=True)
class Image:
    name: str
    source: str                    # where the contents below are stated
    tools: dict[str, Tool]
    entrypoint: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)   # image path -> file on this machine


def _host(program: str) -> str:
    found = shutil.which(program, path="/usr/bin:/bin")
    assert found, f"this machine has no {program} to stand in for the image's"
    return found


# Debian/Ubuntu's Essential packages (coreutils, dash, bash, sed, grep, findutils): in every
# Debian-based image, slim ones included.
ESSENTIAL = ("sh", "bash", "cat", "cut", "sha256sum", "rm", "touch", "mkdir", "cp", "mv", "ls",
             "env", "test", "true", "false", "echo", "printf", "head", "tail", "tr", "sed",
             "grep", "dirname", "basename", "sort", "uname", "id", "chmod", "ln", "wc", "xargs")


def _essential(*extra: str) -> dict[str, Tool]:
    return {p: Tool(host=_host(p)) for p in (*ESSENTIAL, *extra)}


MAKE = Tool(host=_host("make"), handler="make")   # `make -n` checked, see shim.make
NODE_20 = Tool(host=_host("node"), version="20.20.2")
# Debian bookworm's python3 (3.11.2): without python3-venv it has no ensurepip, so
# `python3 -m venv` fails (this machine is bookworm with python3-venv installed).
BOOKWORM_PYTHON = Tool(host="/usr/bin/python3.11", handler="debian-python", version="3.11.2",
                       apt=(("venv", "python3-venv"),))
# What `apt-get install` adds in a Debian image (a package not listed is refused).
APT = {"python3": "python3 3.11.2 (already there in buildpack-deps images)",
       "python3-venv": "ensurepip, so `python3 -m venv` works",
       "python3-dev": "the CPython headers, for an sdist without a wheel"}

IMAGES = {image.name: image for image in (
    Image("node:20-bookworm",
          "nodejs/docker-node 20/bookworm/Dockerfile (last build, Node 20.20.2): FROM "
          "buildpack-deps:bookworm (curl, git, make, gcc; python3 as mercurial's dependency), "
          "node/npm/npx in /usr/local/bin, ENTRYPOINT docker-entrypoint.sh",
          {**_essential("git", "curl"), "make": MAKE, "node": NODE_20,
           "npm": Tool(host=_host("npm"), version="10"), "npx": Tool(host=_host("npx")),
           "python3": BOOKWORM_PYTHON, "apt-get": Tool(handler="apt-get")},
          entrypoint=("docker-entrypoint.sh",)),
    Image("python:3.11",
          "docker-library/python 3.11/bookworm/Dockerfile: FROM buildpack-deps:bookworm + "
          "CPython 3.11 (with ensurepip) in /usr/local/bin; no Node.js",
          {**_essential("git", "curl"), "make": MAKE,
           "python3": Tool(host="/usr/bin/python3.11", version="3.11"),
           "python": Tool(host="/usr/bin/python3.11", version="3.11"),
           "apt-get": Tool(handler="apt-get")}),
    Image("gcr.io/cloud-builders/docker",
          "GoogleCloudPlatform/cloud-builders docker/Dockerfile-versioned: docker-ce-cli, "
          "ENTRYPOINT /usr/bin/docker, talking to the build VM's daemon",
          {"docker": Tool(handler="docker")}, entrypoint=("docker",)),
    Image("gcr.io/google.com/cloudsdktool/cloud-sdk:slim",
          "GoogleCloudPlatform/cloud-sdk-docker debian_slim/Dockerfile: debian trixie-slim + "
          "curl, git, python3, google-cloud-cli (gcloud, gsutil, bq); no ENTRYPOINT",
          {**_essential("git"), "curl": Tool(handler="curl"), "gcloud": Tool(handler="gcloud"),
           "python3": Tool(missing="Debian trixie's python3 3.13: not on this machine")}),
)}

# GitHub-hosted runner: actions/runner-images images/ubuntu/Ubuntu2404-Readme.md (image
# 20260816): Bash 5.2, Node.js 22.23.2, Python 3.12.3, Azure CLI 2.89.1, Pulumi 3.257, Git,
# make, curl, Docker client. `ubuntu-latest` is ubuntu-24.04 (the repository's README).
UBUNTU_2404 = Image(
    "ubuntu-24.04", "actions/runner-images images/ubuntu/Ubuntu2404-Readme.md (20260816)",
    {**_essential("git"), "make": MAKE, "curl": Tool(handler="curl"),
     "node": Tool(version="22.23.2", missing="the runner's Node.js 22: this machine has 20"),
     "npm": Tool(version="10", missing="the runner's npm (Node.js 22)"),
     "python3": Tool(version="3.12.3", missing="the runner's Python 3.12: not on this machine"),
     "az": Tool(handler="az", version="2.89.1"), "pulumi": Tool(handler="pulumi"),
     "docker": Tool(handler="docker")})
RUNNERS = {"ubuntu-24.04": UBUNTU_2404, "ubuntu-latest": UBUNTU_2404}


def project_image(name: str, built: dict[str, Any]) -> Image:
    """The project image as an earlier `docker build` made it from docker/Dockerfile: this
    venv's python with mlops-kit installed, the Dockerfile's ENV (build arguments applied) and
    the files it copies from the build context."""
    read = Dockerfile.read(Path(built["dockerfile"]), built["args"])
    files = {target: str(source) for target, source in read.files(Path(built["context"]))}
    python = Tool(handler="project-python", version="3.11")
    return Image(name, "docker/Dockerfile: FROM python:3.11-slim, ENTRYPOINT []",
                 {**_essential(), "python": python, "python3": python}, env=read.env,
                 files=files)
