"""The pinned `cdk` CLI runs, word for word, the commands the docs show (README.md, docs/aws.md)
and the commands the synthesized delivery pipelines give CodeBuild: each selects its Stage's
stacks and no other (`cdk list`), a deploy gets past stack selection and stops only for want of
credentials, and a diff of an environment lists its stacks.

One `cdk synth` of every environment makes the cloud assembly all later commands read
(`--app <cdk.out>`: the CLI takes an assembly as its app), so each command costs seconds.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import threading
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from mlops_cdk.settings import env_settings
from packaging.specifiers import SpecifierSet

from mlops_kit.adapters.aws import naming
from mlops_kit.config import load_config
from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # runs the cdk CLI: a synth, then seconds per command

CLI = ROOT / "node_modules" / ".bin" / "cdk"
CONFIG = ROOT / "mlops.yaml"
DOCS = ("README.md", "docs/aws.md")
SELECTING = ("deploy", "diff")  # the subcommands that select stacks
VALUED = {"-c", "--context", "--require-approval", "--app", "-a", "--output", "-o"}
FLAGS = {"--no-notices", "--all", "--exclusively", "-e", "--verbose", "-v"}
NO_CREDENTIALS = "Need to perform AWS calls for account {}, but no credentials have been configured"
# What each CodeBuild image offers in `runtime-versions`: "Available runtimes" (Linux image
# runtimes), https://docs.aws.amazon.com/codebuild/latest/userguide/available-runtimes.html, as
# the image's own list has them (aws/aws-codebuild-docker-images, ubuntu/standard/7.0/runtimes.yml,
# commit 0c5eb16, 2026-04-07).
IMAGE_RUNTIMES = {"aws/codebuild/standard:7.0": {
    "python": {"3.9", "3.10", "3.11", "3.12", "3.13", "3.14"},
    "nodejs": {"18", "20", "22", "24"}}}


# --- the commands -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """One `npx cdk` command line as written in `where` (a doc, or a CodeBuild project)."""

    where: str
    argv: tuple[str, ...]

    @property
    def parts(self) -> tuple[str, list[str], dict[str, str]]:
        """(subcommand, stack patterns, context); an option this module does not know fails."""
        words, positional, context = list(self.argv[2:]), [], {}
        while words:
            word = words.pop(0)
            if word in ("-c", "--context"):
                key, _, value = words.pop(0).partition("=")
                context[key] = value
            elif word in VALUED:
                words.pop(0)
            elif word.startswith("-"):
                assert word in FLAGS, f"{self.where}: {shlex.join(self.argv)}: unknown {word}"
            else:
                positional.append(word)
        return positional[0], positional[1:], context

    @property
    def subcommand(self) -> str:
        words = list(self.argv[2:])
        while words[0].startswith("-"):  # global options before it
            words = words[2:] if words[0] in VALUED or words[0] in ("-c", "--context") \
                else words[1:]
        return words[0]

    def __str__(self) -> str:
        return f"{self.where}: {shlex.join(self.argv)}"


def shell_commands(markdown: str) -> list[tuple[str, ...]]:
    """Each command of the shell code blocks: continuation lines joined, comments dropped."""
    commands = []
    for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", markdown, re.M | re.S):
        if lang in ("bash", "sh", "shell"):
            for line in body.replace("\\\n", " ").splitlines():
                if argv := shlex.split(line, comments=True):
                    commands.append(tuple(argv))
    return commands


def cdk_commands(where: str, commands: list[tuple[str, ...]]) -> list[Command]:
    return [Command(where, argv) for argv in commands
            if argv[:2] == ("npx", "cdk") and Command(where, argv).subcommand in SELECTING]


def doc_commands() -> list[Command]:
    return [c for doc in DOCS for c in cdk_commands(doc, shell_commands((ROOT / doc).read_text()))]


@dataclass(frozen=True)
class Target:
    """The stacks one Stage selector must select, and their account and region."""

    env: str | None  # None: the delivery stage
    stacks: frozenset[str]
    account: str
    region: str


def targets() -> dict[str, Target]:
    """Each Stage's selector and the stacks (CloudFormation names) the app puts in it."""
    config = load_config(CONFIG).config
    out = {}
    for name in (n for n, e in config.environments.items() if e.cloud == "aws"):
        s = env_settings(CONFIG, name, ROOT)
        stacks = {s.prefix("platform"), *(s.prefix(m.name) for m in config.all_models)}
        out[s.selector] = Target(name, frozenset(stacks), s.account, s.region)
    home = env_settings(CONFIG, naming.home_environment(config), ROOT)
    out[naming.cdk_selector(config.project)] = Target(
        None, frozenset({f"{config.project}-cicd"}), home.account, home.region)
    return out


def target_of(command: Command) -> Target:
    """The one Stage `command` names; it must be one `-c env=E` synthesizes (`mlops_cdk.app`:
    E's Stage, and the delivery Stage when E is the home environment)."""
    _, patterns, context = command.parts
    known = targets()
    assert len(patterns) == 1 and patterns[0] in known, (
        f"{command}: name one Stage with its path pattern, one of {sorted(known)}")
    target = known[patterns[0]]
    home = naming.home_environment(load_config(CONFIG).config)
    assert context.get("env") == (target.env or home), (
        f"{command}: -c env={context.get('env')} does not synthesize {patterns[0]}")
    return target


# --- running the CLI --------------------------------------------------------------------------


def offline(tmp: Path) -> dict[str, str]:
    """The CLI's environment: offline, quiet, caches as the Makefile sets them, no credentials
    (no AWS variable, empty config and credentials files, no instance metadata)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({
        "CDK_DISABLE_CLI_TELEMETRY": "true", "CDK_HOME": str(ROOT / ".cache" / "cdk"),
        "JSII_RUNTIME_PACKAGE_CACHE_ROOT": str(ROOT / ".cache" / "jsii"),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        "npm_config_offline": "true",  # npx never downloads: the pinned CLI or nothing
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": str(tmp / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-credentials"),
    })
    return env


def run(argv: list[str] | tuple[str, ...], cwd: Path,
        env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300, check=False)


@dataclass
class Cli:
    """The pinned CLI in a project folder, reading the one synthesized assembly."""

    project: Path
    assembly: Path
    env: dict[str, str]
    docker_calls: Path  # a `docker` first on PATH writes here: the CLI never ran Docker if absent
    done: dict[tuple[str, ...], subprocess.CompletedProcess[str]] = field(default_factory=dict)

    def __call__(self, argv: tuple[str, ...], **env: str) -> subprocess.CompletedProcess[str]:
        """`argv` as written, offline, on the assembly (each distinct call runs once)."""
        full = (*argv, "--no-notices", "--app", str(self.assembly))
        if env:
            return run(full, self.project, {**self.env, **env})
        if full not in self.done:
            self.done[full] = run(full, self.project, self.env)
        return self.done[full]

    def prefetch(self, argvs: list[tuple[str, ...]]) -> None:
        """Run `argvs` side by side (each call is mostly Node starting up)."""
        with ThreadPoolExecutor(os.cpu_count()) as pool:
            list(pool.map(self, argvs))


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    assert CLI.exists(), f"{CLI} is missing: run `npm ci` (make synth does) for the pinned CLI"
    work = tmp_path_factory.mktemp("cdk-cli")
    project = work / "project"  # where the commands run: the repository's app and CLI
    project.mkdir()
    for name in ("cdk.json", "cdk", ".venv", "node_modules", "docker", "src", "pyproject.toml",
                 "README.md"):
        (project / name).symlink_to(ROOT / name)
    shutil.copy(CONFIG, project / "mlops.yaml")  # the config sits in the project (the context)
    config = load_config(CONFIG).config
    home = env_settings(CONFIG, naming.home_environment(config), ROOT)
    (project / "releases.json").write_text(json.dumps(releases(config, home)))
    probe = work / "bin"
    probe.mkdir()
    (probe / "docker").write_text(f"#!/bin/sh\necho \"$@\" >> {work / 'docker-calls'}\nexit 1\n")
    (probe / "docker").chmod(0o755)
    env = offline(work)
    env["PATH"] = f"{probe}{os.pathsep}{env['PATH']}"
    assembly = work / "cdk.out"
    synth = run(["npx", "cdk", "synth", "--no-notices", "--quiet", "-c", "releases=releases.json",
                 "--output", str(assembly)], project, env)
    assert synth.returncode == 0, synth.stderr[-3000:]
    return Cli(project, assembly, env, work / "docker-calls")


def releases(config: Any, home: Any) -> dict[str, dict[str, dict[str, str]]]:
    """A releases file as `release approved` writes it: version 3 of every model, approved at
    home, for every later environment."""
    later = [n for n, e in config.environments.items() if e.cloud == "aws" and n != home.name]
    version = {}
    for model in config.all_models:
        group = home.package_group(model)
        files = f"s3://{home.artifacts_bucket}/models/{group}/3"
        version[model.name] = {
            "package_arn": f"arn:aws:sagemaker:{home.region}:{home.account}:model-package/"
                           f"{group}/3",
            "model_data_url": f"{files}/model.tar.gz", "baseline_uri": f"{files}/baseline/"}
    return {env: version for env in later}


@pytest.fixture(scope="module")
def buildspecs(cli: Cli) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Each CodeBuild project of the delivery stack: (its Environment, its parsed BuildSpec)."""
    manifest = json.loads((cli.assembly / "manifest.json").read_text())
    stage = naming.cdk_stage(load_config(CONFIG).config.project)
    nested = next(a["properties"]["directoryName"] for a in manifest["artifacts"].values()
                  if a["type"] == "cdk:cloud-assembly"
                  and a["properties"]["displayName"] == stage)
    template = next((cli.assembly / nested).glob("*.template.json"))
    projects = [r["Properties"] for r in json.loads(template.read_text())["Resources"].values()
                if r["Type"] == "AWS::CodeBuild::Project"]
    return {p["Name"]: (p["Environment"], json.loads(p["Source"]["BuildSpec"]))
            for p in projects}


def buildspec_commands(buildspecs: dict[str, tuple[dict[str, Any], dict[str, Any]]],
                       ) -> list[Command]:
    return [c for name, (_, spec) in buildspecs.items() for c in cdk_commands(
        f"CodeBuild {name}", [tuple(shlex.split(line)) for line in spec["phases"]["build"]
                              ["commands"]])]


def every_command(buildspecs: dict[str, tuple[dict[str, Any], dict[str, Any]]],
                  ) -> list[Command]:
    return doc_commands() + buildspec_commands(buildspecs)


# --- what the commands are --------------------------------------------------------------------


def test_the_old_all_selects_no_stack_of_this_app(cli: Cli) -> None:
    result = cli(("npx", "cdk", "deploy", "--all", "-c", "env=dev"))
    assert result.returncode != 0
    assert "No stack found in the main cloud assembly" in result.stderr


def test_docs_and_pipelines_name_a_stage_in_every_command(buildspecs: Any) -> None:
    docs = {(c.where, c.subcommand, target_of(c).env) for c in doc_commands()}
    assert ("README.md", "deploy", "dev") in docs
    assert {("docs/aws.md", "deploy", "dev"), ("docs/aws.md", "deploy", None),
            ("docs/aws.md", "diff", "staging")} <= docs
    config = load_config(CONFIG).config
    home = naming.home_environment(config)
    deploys = {c.where: target_of(c).env for c in buildspec_commands(buildspecs)}
    # one deploy per environment, each in its own project; none deploys the delivery stack
    assert deploys == {f"CodeBuild {config.project}-deploy-{env}": env
                       for env in [home, *config.cicd.stages]}


def test_the_selectors_cover_every_stack_of_the_app_once(cli: Cli) -> None:
    listed = json.loads(cli(("npx", "cdk", "list", "--long", "--json")).stdout)
    stacks = [s for t in targets().values() for s in t.stacks]
    assert sorted(s["name"] for s in listed) == sorted(stacks)


def test_each_command_lists_exactly_its_stages_stacks(cli: Cli, buildspecs: Any) -> None:
    def listing(command: Command) -> tuple[str, ...]:
        _, patterns, context = command.parts
        flags = [w for k, v in context.items() for w in ("-c", f"{k}={v}")]
        return ("npx", "cdk", "list", "--long", "--json", *flags, *patterns)

    cli.prefetch([listing(c) for c in every_command(buildspecs)])
    for command in every_command(buildspecs):
        result = cli(listing(command))
        assert result.returncode == 0, f"{command}\n{result.stderr}"
        listed = {(s["name"], s["environment"]["account"], s["environment"]["region"])
                  for s in json.loads(result.stdout)}
        target = target_of(command)
        assert listed == {(name, target.account, target.region) for name in target.stacks}, (
            command)


def test_each_deploy_gets_past_stack_selection_and_stops_for_want_of_credentials(
        cli: Cli, buildspecs: Any) -> None:
    """The CLI looks for each selected stack's published assets (credentials needed, a debug
    line per asset), then builds the assets: a Docker image's build first resolves its ECR
    repository, so without credentials the deploy stops there, before Docker runs."""
    deploys = [c for c in every_command(buildspecs) if c.subcommand == "deploy"]
    cli.prefetch([(*c.argv, "--verbose") for c in deploys])
    for command in deploys:
        result = cli((*command.argv, "--verbose"))
        out = result.stdout + result.stderr
        assert result.returncode != 0, command
        assert "No stack found" not in out and "No stacks match" not in out, command
        target = target_of(command)
        assert out.strip().splitlines()[-1] == NO_CREDENTIALS.format(target.account), (
            f"{command}\n{out[-2000:]}")
        checked = set(re.findall(r"^\[[\d:]+\] (\S+): debug: Need to perform AWS calls", out,
                                 re.M))
        assert checked == target.stacks, command
    assert not cli.docker_calls.exists(), cli.docker_calls.read_text()


# --- cdk diff, against a loopback account with nothing deployed -------------------------------


class EmptyAccount(ThreadingHTTPServer):
    """A loopback AWS (AWS_ENDPOINT_URL) for `cdk diff`: the caller is `account`, CloudFormation
    answers that no stack exists (as it does for a fresh account), every other call is denied
    (the CLI then proceeds as documented: no lookup role, a template diff). It records calls."""

    def __init__(self, account: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.account = account
        self.calls: list[tuple[str, str, str]] = []  # (service, action, StackName)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: EmptyAccount

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        scope = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/",
                          self.headers.get("Authorization", ""))
        service = scope.group(1) if scope else ""
        form = {k: v[0] for k, v in parse_qs(body).items()}
        action = form.get("Action") or self.headers.get("X-Amz-Target", "")
        self.server.calls.append((service, action, form.get("StackName", "")))
        if action == "GetCallerIdentity":
            self._answer(200, "text/xml", (
                '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
                f"<GetCallerIdentityResult><Arn>arn:aws:iam::{self.server.account}:user/ci</Arn>"
                f"<UserId>AIDCI</UserId><Account>{self.server.account}</Account>"
                "</GetCallerIdentityResult><ResponseMetadata><RequestId>1</RequestId>"
                "</ResponseMetadata></GetCallerIdentityResponse>"))
        elif service == "cloudformation":
            self._error("ValidationError", f"Stack with id {form.get('StackName')} does not exist")
        elif "X-Amz-Target" in self.headers:
            self._answer(400, "application/x-amz-json-1.1", json.dumps(
                {"__type": "AccessDeniedException", "message": "denied"}))
        else:
            self._error("AccessDenied", "denied")

    def _error(self, code: str, message: str) -> None:
        self._answer(400, "text/xml", (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}"
            "</Message></Error><RequestId>1</RequestId></ErrorResponse>"))

    def _answer(self, status: int, kind: str, text: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(text.encode())))
        self.end_headers()
        self.wfile.write(text.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def empty_account() -> Iterator[type[EmptyAccount]]:
    servers: list[EmptyAccount] = []

    class Started(EmptyAccount):
        def __init__(self, account: str) -> None:
            super().__init__(account)
            servers.append(self)
            threading.Thread(target=self.serve_forever, daemon=True).start()

    yield Started
    for server in servers:
        server.shutdown()
        server.server_close()


def test_diff_of_an_environment_lists_its_stacks(cli: Cli,
                                                 empty_account: type[EmptyAccount]) -> None:
    diffs = [c for c in doc_commands() if c.subcommand == "diff"]
    assert diffs
    for command in diffs:
        target = target_of(command)
        account = empty_account(target.account)
        result = cli(command.argv, AWS_ENDPOINT_URL=account.url, AWS_REGION=target.region,
                     AWS_ACCESS_KEY_ID="AKIDCI", AWS_SECRET_ACCESS_KEY="ci")
        out = result.stdout + result.stderr
        assert result.returncode == 0, f"{command}\n{out[-2000:]}"
        assert set(re.findall(r"^Stack \S+ \((\S+)\)", out, re.M)) == target.stacks, command
        assert f"Number of stacks with differences: {len(target.stacks)}" in out, command
        asked = {stack for service, action, stack in account.calls
                 if service == "cloudformation" and action == "DescribeStacks"}
        assert asked - {"CDKToolkit"} == target.stacks, command  # and the bootstrap stack


# --- the buildspecs, as CodeBuild starts them -------------------------------------------------


def test_buildspec_runtimes_are_offered_by_the_image_and_fit_the_project(buildspecs: Any) -> None:
    python = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())
                          ["project"]["requires-python"])
    engine = json.loads((ROOT / "node_modules" / "aws-cdk" / "package.json").read_text())
    node = re.fullmatch(r">= ?(\d+)(\.\d+)*", engine["engines"]["node"])
    assert node, engine["engines"]
    for name, (environment, spec) in buildspecs.items():
        offered = IMAGE_RUNTIMES[environment["Image"]]
        runtimes = spec["phases"]["install"]["runtime-versions"]
        assert set(runtimes) == {"python", "nodejs"}, name
        assert runtimes["python"] in offered["python"] and runtimes["python"] in python, name
        assert runtimes["nodejs"] in offered["nodejs"], name
        assert int(runtimes["nodejs"]) >= int(node.group(1)), name


def checkout(folder: Path) -> Path:
    """The source artifact: the repository's files (tracked, or new and not ignored). Without
    git (CodePipeline's zip has no .git) the tree without what .gitignore names by folder."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=ROOT, capture_output=True, check=False)
    if listed.returncode != 0:
        ignored = [p.strip().rstrip("/") for p in (ROOT / ".gitignore").read_text().splitlines()]
        shutil.copytree(ROOT, folder, symlinks=True, ignore=shutil.ignore_patterns(
            ".git", *(p for p in ignored if p and "/" not in p)))
        return folder
    for name in filter(None, listed.stdout.decode().split("\0")):
        if (ROOT / name).is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, folder / name)
    return folder


def test_buildspec_programs_exist_after_the_install_phase(buildspecs: Any, tmp_path: Path) -> None:
    """CodeBuild runs `install` then `build` in the source root with the project's environment
    variables. `npm ci` runs here (from npm's cache); `make install` needs the package index, so
    its dry run must create `.venv` and install the project into it, and the venv it made here
    stands in. Then every build command's program is there: make targets, the venv's Python
    running the command up to its first AWS call, the pinned `npx cdk`."""
    source = checkout(tmp_path / "source")
    assert not (source / ".venv").exists() and not (source / "node_modules").exists()
    pin = json.loads((ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]
    installs = {tuple(spec["phases"]["install"]["commands"]) for _, spec in buildspecs.values()}
    assert installs == {("make install", "npm ci --no-audit --no-fund")}
    variables = {json.dumps(e["EnvironmentVariables"]) for e, _ in buildspecs.values()}
    assert len(variables) == 1  # every project has the same: one install serves them all
    env = {**offline(tmp_path), **{v["Name"]: v["Value"] for v in json.loads(variables.pop())}}
    dry = run(["make", "-n", "install"], source, env)
    assert dry.returncode == 0 and re.search(r"-m venv \.venv\b", dry.stdout), dry
    assert re.search(r'\.venv/bin/python -m pip install .*-e "?\.\[dev\]', dry.stdout), dry
    npm = run(shlex.split("npm ci --no-audit --no-fund"), source, env)
    assert npm.returncode == 0, npm.stderr
    (source / ".venv").symlink_to(ROOT / ".venv")  # what `make install` made of this pyproject
    lines = sorted({line for _, spec in buildspecs.values()
                    for line in spec["phases"]["build"]["commands"]})

    def started(line: str) -> subprocess.CompletedProcess[str]:
        argv = shlex.split(line)
        if argv[0] == "make":  # the target exists
            return run(["make", "-n", *argv[1:]], source, env)
        if argv[:2] == ["npx", "cdk"]:  # the pinned CLI (the command itself: the tests above)
            return run(["npx", "cdk", "--version"], source, env)
        assert argv[0] == ".venv/bin/python", f"{line}: which program?"
        return run(argv, source, env)

    with ThreadPoolExecutor(os.cpu_count()) as pool:
        results = dict(zip(lines, pool.map(started, lines), strict=True))
    for line, result in results.items():
        if line.startswith("make "):
            assert result.returncode == 0, f"{line}\n{result.stderr}"
        elif line.startswith("npx cdk "):
            assert result.stdout.split()[0] == pin, f"{line}\n{result}"
        else:  # config read, arguments taken: it stops at its first AWS call, as it should here
            assert result.returncode == 1, f"{line}\n{result.stderr}"
            assert result.stderr.strip().endswith(
                "botocore.exceptions.NoCredentialsError: Unable to locate credentials"), (
                f"{line}\n{result.stderr[-2000:]}")
