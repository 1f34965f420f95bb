"""The programs of an emulated CI image: each is a small script on the step's PATH that runs
this machine's stand-in, or this module's handler for it (the stdlib and the harness's
Dockerfile reading only: it starts per call).

Handlers either emulate what the program does here (`apt-get`, `make`, a python without
ensurepip, `pip install` of a listed tool) or, for programs that would reach a cloud
(`docker`, `gcloud`, `curl`, `az`), check their arguments against the grammar we use, check the
files they read exist, snapshot those files and record the call in `<run>/calls.jsonl`. A call
outside that grammar fails: the emulation never guesses.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if __name__ == "__main__":  # run by path with -I: the repository, for tests.cloudsim
    sys.path.insert(0, str(ROOT))
from tests.cloudsim.container import Dockerfile  # noqa: E402

VENV = ROOT / ".venv"
BUILTINS = {"test", "[", "cd", "echo", "true", "false", "exit", "export", "set", ":", "."}
DEBIAN_NO_VENV = ("The virtual environment was not created successfully because ensurepip is "
                  "not available.  On Debian/Ubuntu systems, you need to install the "
                  "python3-venv package (apt install python3.11-venv).")
# What `make test` needs beyond the programs its recipes name (minimum major, why).
SUITE_NEEDS = {"node": (20, "aws-cdk-lib runs on Node through jsii (tests/test_cdk.py), as "
                            "does the pinned cdk CLI (package.json)"),
               "npm": (0, "installs the pinned cdk CLI (npm ci, package-lock.json)"),
               "git": (0, "the register step reads the checkout's commit (steps/register.py)")}
PIP = {"azure-cli": "az"}   # `pip install X` in setup-python's interpreter puts this on PATH


class Emulation(Exception):
    """A call the image or the emulation cannot serve; the message says which and why."""


# -- shims -------------------------------------------------------------------------------

def write_shim(folder: Path, name: str, tool: dict[str, Any], container: Path,
               run: Path) -> None:
    """One program of an image in `folder`, and its row in `folder/tools.json`."""
    folder.mkdir(parents=True, exist_ok=True)
    if tool.get("handler"):
        body = (f"exec {shlex.quote(sys.executable)} -I {shlex.quote(__file__)} --tool {name} "
                f"--bin {shlex.quote(str(folder))} --container {shlex.quote(str(container))} "
                f'--run {shlex.quote(str(run))} -- "$@"')
    elif tool.get("host"):
        body = f'exec {shlex.quote(tool["host"])} "$@"'
    else:
        body = f"echo {shlex.quote(f'{name}: ' + tool['missing'])} >&2; exit 127"
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    manifest = folder / "tools.json"
    rows = json.loads(manifest.read_text()) if manifest.exists() else {}
    manifest.write_text(json.dumps({**rows, name: tool}))


def tool_at(path: str) -> dict[str, Any] | None:
    """The image row of the program at `path` (None for a file that is no shim)."""
    manifest = Path(path).parent / "tools.json"
    return json.loads(manifest.read_text()).get(Path(path).name) if manifest.exists() else None


# -- the handlers' context ---------------------------------------------------------------

class Call:
    """One invocation: the program's row, its container's state and the run's records."""

    def __init__(self, name: str, folder: Path, container: Path, run: Path) -> None:
        self.name, self.folder, self.container, self.run = name, folder, container, run
        self.tool: dict[str, Any] = json.loads((folder / "tools.json").read_text())[name]
        self.image = json.loads((container / "image.json").read_text())
        self.cwd = Path.cwd()

    def state(self) -> dict[str, Any]:
        path = self.container / "state.json"
        return json.loads(path.read_text()) if path.exists() else {"apt": [], "az": []}

    def save(self, state: dict[str, Any]) -> None:
        (self.container / "state.json").write_text(json.dumps(state))

    def record(self, args: list[str], **extra: Any) -> None:
        with (self.run / "calls.jsonl").open("a") as out:
            out.write(json.dumps({"program": self.name, "args": args, "image":
                                  self.image["name"], "cwd": str(self.cwd), **extra}) + "\n")

    def tool_of(self, name: str) -> dict[str, Any]:
        """The row of another program in this call's folder."""
        return dict(json.loads((self.folder / "tools.json").read_text())[name])

    def read(self, name: str, what: str) -> str:
        """A file the call reads (relative to its working folder), or Emulation."""
        path = self.cwd / name
        if not path.is_file():
            raise Emulation(f"{self.name}: {what} {name} does not exist in {self.cwd}")
        return path.read_text()

    def build_args(self, dockerfile_name: str, context: str, pairs: list[str]) -> dict[str, str]:
        """Check a build's Dockerfile and context exist and each --build-arg is an ARG."""
        self.read(dockerfile_name, "Dockerfile")
        if not (self.cwd / context).is_dir():
            raise Emulation(f"{self.name}: build context {context} is not a folder")
        values = dict(p.split("=", 1) for p in pairs)
        declared = Dockerfile.read(self.cwd / dockerfile_name, values).args
        unknown = sorted(set(values) - set(declared))
        if unknown:
            raise Emulation(f"{self.name}: --build-arg {', '.join(unknown)}: {dockerfile_name} "
                            "declares no such ARG (the value would be ignored)")
        if any(not v or v.startswith("$") for v in values.values()):
            raise Emulation(f"{self.name}: an unsubstituted or empty --build-arg: {values}")
        return values


def options(args: list[str], known: dict[str, str]) -> tuple[dict[str, list[str]], list[str]]:
    """Split `args` by `known` ({flag: 'value' | 'flag'}, aliases included); Emulation on an
    option outside it."""
    found: dict[str, list[str]] = {}
    positional: list[str] = []
    it = iter(args)
    for arg in it:
        if arg.startswith("-") and arg != "-":
            if arg not in known:
                raise Emulation(f"option {arg} is outside the grammar this emulation checks")
            found.setdefault(arg, []).append(next(it) if known[arg] == "value" else "")
        else:
            positional.append(arg)
    return found, positional


# -- emulated programs -------------------------------------------------------------------

def apt_get(call: Call, args: list[str]) -> int:
    if args[:1] == ["update"] and all(a.startswith("-q") for a in args[1:]):
        return 0
    flags = [a for a in args[1:] if a.startswith("-")]
    packages = [a for a in args[1:] if not a.startswith("-")]
    if args[:1] != ["install"] or not packages:
        raise Emulation(f"apt-get {' '.join(args)}: only `update` and `install` are emulated")
    if not any(f in ("--yes", "--assume-yes") or (not f.startswith("--") and "y" in f)
               for f in flags):
        raise Emulation("apt-get install without -y asks 'Do you want to continue?' and aborts")
    from_table = json.loads((call.container / "apt.json").read_text())
    unknown = [p for p in packages if p not in from_table]
    if unknown:
        print(f"E: Unable to locate package {unknown[0]} (not in the emulation's apt table, "
              "tests/ci/images.py APT)", file=sys.stderr)
        return 100
    state = call.state()
    state["apt"] = sorted({*state["apt"], *packages})
    call.save(state)
    return 0


def debian_python(call: Call, args: list[str]) -> int:
    """Debian's python3: `-m venv` / `-m ensurepip` fail until python3-venv is installed."""
    tool = call.tool
    if _modules(args) & {"venv", "ensurepip"} and not _has(call, tool, "venv"):
        print(DEBIAN_NO_VENV, file=sys.stderr)
        return 1
    os.execv(tool["host"], [tool["host"], *args])
    return 0  # not reached


def _modules(args: list[str]) -> set[str]:
    return {b for a, b in itertools.pairwise(args) if a == "-m"}


def _has(call: Call, tool: dict[str, Any], capability: str) -> bool:
    """Whether `tool` has `capability` in this container (its apt package installed)."""
    needs = dict(tool.get("apt") or [])
    return capability not in needs or needs[capability] in call.state()["apt"]


def pip(call: Call, args: list[str]) -> int:
    """setup-python's pip: `pip install` of a tool in PIP adds it next to this interpreter;
    `pip install -e .` installs the project in the working folder (see `_editable`)."""
    if args[:3] == ["install", "-e", "."]:
        return _editable(call, args[3:])
    packages = [a for a in args[1:] if not a.startswith("-")]
    if args[:1] != ["install"] or not packages or any(p not in PIP for p in packages):
        raise Emulation(f"pip {' '.join(args)}: reaches the package index; the emulation "
                        f"installs only {sorted(PIP)} (tests/ci/shim.py PIP)")
    for package in packages:
        write_shim(call.folder, PIP[package], {"handler": PIP[package]}, call.container,
                   call.run)
    call.record(args)
    return 0


KIT_SPEC = re.compile(r"mlops-kit(?:\[([\w,-]+)\])?")
TEST_TOOLS = {"pytest"}   # in this machine's .venv, as in a project's test dependencies


def _editable(call: Call, more: list[str]) -> int:
    """`pip install -e . [mlops-kit[X]] [pytest]` of a project that depends on mlops-kit: its
    interpreter becomes a venv holding the project (its src/ folder), this work tree's kit
    and this machine's .venv packages (the dependencies pip would resolve), with the kit's
    `mlops-kit` script and pytest; an extra the kit does not declare fails as pip warns."""
    project = tomllib.loads(call.read("pyproject.toml", "project file"))["project"]
    if not any(KIT_SPEC.match(d) for d in project.get("dependencies", [])):
        raise Emulation("pip install -e .: the project does not depend on mlops-kit")
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    for spec in more:
        kit = KIT_SPEC.fullmatch(spec)
        extras = (kit[1] or "").split(",") if kit and kit[1] else []
        unknown = [e for e in extras if e not in declared]
        if (not kit and spec not in TEST_TOOLS) or unknown:
            raise Emulation(f"pip install {spec}: not a test tool nor a declared extra of "
                            f"mlops-kit ({sorted(declared)})")
    venv = call.folder.parent / "site"
    source = call.cwd / "src" if (call.cwd / "src").is_dir() else call.cwd
    python = installed_venv(venv, call.tool_of("python")["host"],
                            [source, *(ROOT / p for p in ("src", "cdk", "pulumi"))])
    for name, module in (("mlops-kit", "mlops_kit.cli"), ("pytest", "pytest")):
        script = venv / "bin" / name
        script.write_text(f'#!/bin/sh\nexec {shlex.quote(str(python))} -m {module} "$@"\n')
        script.chmod(0o755)
    for name in ("python", "python3", "mlops-kit", "pytest"):
        target = python if name.startswith("python") else venv / "bin" / name
        write_shim(call.folder, name, {"host": str(target), "version": "3.11"}, call.container,
                   call.run)
    call.record(["install", "-e", ".", *more], project=project["name"])
    return 0


def installed_venv(venv: Path, base: str, sources: list[Path]) -> Path:
    """A venv of `base` holding `sources` (what an editable install adds) and this machine's
    .venv packages (the dependencies pip would resolve; its own editable mlops-kit, a .pth
    there, is not read); its python."""
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3.*")) / "site-packages"
    (site / "a_project.pth").write_text("".join(f"{s}\n" for s in sources))
    (site / "deps.pth").write_text(f"{next((VENV / 'lib').glob('python3.*')) / 'site-packages'}\n")
    return venv / "bin" / "python"


def npx(call: Call, args: list[str]) -> int:
    """`npx --yes aws-cdk@V [--no-notices] deploy ...`: the cdk CLI on the project's cdk.json,
    whose app must start with the programs on PATH, with AWS credentials and a region."""
    if args[:1] != ["--yes"] or len(args) < 3 or not args[1].startswith("aws-cdk@"):
        raise Emulation(f"npx {' '.join(args)}: only `npx --yes aws-cdk@<version> ...` is "
                        "emulated (without --yes npx asks before installing)")
    opts, rest = options(args[2:], {"--no-notices": "flag", "--require-approval": "value",
                                    "-c": "value", "--context": "value"})
    if len(rest) != 2 or rest[0] != "deploy" or opts.get("--require-approval") != ["never"]:
        raise Emulation(f"cdk {' '.join(args[2:])}: only `deploy --require-approval never "
                        "<selector>` is emulated (anything else would prompt in CI)")
    app = json.loads(call.read("cdk.json", "the CDK app file"))["app"].split()
    program = shutil.which(app[0])
    if program is None:
        raise Emulation(f"cdk.json app {' '.join(app)}: no {app[0]} on PATH")
    if app[1:2] == ["-m"]:
        found = subprocess.run([program, "-c", f"import importlib.util as u; "
                                f"raise SystemExit(u.find_spec({app[2]!r}) is None)"],
                               capture_output=True, check=False)
        if found.returncode:
            raise Emulation(f"cdk.json app: {program} cannot import {app[2]}")
    missing = [k for k in ("AWS_ACCESS_KEY_ID", "AWS_REGION") if not os.environ.get(k)]
    if missing:
        raise Emulation(f"cdk deploy: no {', '.join(missing)} (no AWS credentials)")
    context = dict(c.split("=", 1) for c in opts.get("-c", []) + opts.get("--context", []))
    call.record(args, cli=args[1], app=app, context=context, selector=rest[1],
                region=os.environ["AWS_REGION"])
    return 0


def make(call: Call, args: list[str]) -> int:
    """`make install` / `make test`: the recipes (`make -n`) must find every program they
    name, and `test` what the suite needs; `install` then makes `.venv`: the checkout's kit
    (editable, as `pip install -e`) with this machine's .venv packages."""
    if not args or set(args) - {"install", "test"}:
        raise Emulation(f"make {' '.join(args)}: only `make install` and `make test` run here")
    for target in args:
        problems = make_problems(call, target)
        if problems:
            print("\n".join(f"make {target}: {p}" for p in problems), file=sys.stderr)
            return 2
        call.record([target], apt=call.state()["apt"], path=os.environ.get("PATH", ""))
        if target == "install" and not (call.cwd / ".venv").exists():
            installed_venv(call.cwd / ".venv", sys.executable, [call.cwd / "src"])
    return 0


def make_problems(call: Call, target: str) -> list[str]:
    dry = subprocess.run([call.tool["host"], "-n", target], cwd=call.cwd, capture_output=True,
                         text=True, check=False)
    problems = [line for line in dry.stderr.splitlines() if "not found" in line]
    if dry.returncode:
        return [*problems, dry.stderr.strip() or f"make -n {target} failed"]
    for line in dry.stdout.splitlines():
        for words in _commands(line):
            problems += _program_problems(call, words)
    if target == "test":
        for program, (major, why) in SUITE_NEEDS.items():
            problems += _need_problems(call, program, major, why)
    return problems


def _commands(line: str) -> list[list[str]]:
    """The simple commands of a shell line, leading VAR=value assignments dropped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in ("&&", "||", ";", "|", "&"):
            commands.append([])
        elif commands[-1] or not re.match(r"^\w+=", token):
            commands[-1].append(token)
    return [c for c in commands if c]


def _program_problems(call: Call, words: list[str]) -> list[str]:
    program = words[0]
    if program in BUILTINS:
        return []
    if program.startswith(".venv/bin/"):   # made by the install recipe: this machine's venv
        ok = (VENV / program.removeprefix(".venv/")).exists()
        return [] if ok else [f"{program}: `make install` does not provide it"]
    if "/" in program:
        return [] if (call.cwd / program).exists() else [f"{program}: no such file"]
    path = shutil.which(program)
    tool = tool_at(path) if path else None
    if path is None or tool is None or (tool.get("missing") and not tool.get("version")):
        return [f"{program}: not on PATH in {call.image['name']}"
                + (f" ({tool['missing']})" if tool else "")]
    problems = []
    if _modules(words) & {"venv"}:
        if not _has(call, tool, "venv"):
            problems.append(f"{program} -m venv: {DEBIAN_NO_VENV}")
        floor = _requires_python()
        if _version(tool.get("version", "")) < floor:
            problems.append(f"{program} is Python {tool.get('version')}; pyproject.toml "
                            f"requires >= {'.'.join(map(str, floor))}")
    return problems


def _need_problems(call: Call, program: str, major: int, why: str) -> list[str]:
    path = shutil.which(program)
    tool = tool_at(path) if path else None
    if tool is None:
        return [f"{program} is not on PATH in {call.image['name']}: {why}"]
    if major and _version(tool.get("version", ""))[:1] < (major,):
        return [f"{program} {tool.get('version')} in {call.image['name']}: {why}, and needs "
                f">= {major}"]
    return []


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def _requires_python() -> tuple[int, ...]:
    spec = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    return _version(spec)


# -- programs that would reach a cloud: check, snapshot, record --------------------------

def docker(call: Call, args: list[str]) -> int:
    built = call.run / "docker.json"
    tags: dict[str, dict[str, Any]] = json.loads(built.read_text()) if built.exists() else {}
    if args[:1] == ["build"]:
        opts, rest = options(args[1:], {"-f": "value", "--file": "value", "-t": "value",
                                        "--tag": "value", "--build-arg": "value"})
        if len(rest) != 1:
            raise Emulation(f"docker build takes one context, got {rest}")
        name = (opts.get("-f") or opts.get("--file") or [f"{rest[0]}/Dockerfile"])[0]
        values = call.build_args(name, rest[0], opts.get("--build-arg", []))
        for tag in opts.get("-t", []) + opts.get("--tag", []):
            if tag.count(":") != 1 or "$" in tag:
                raise Emulation(f"docker build -t {tag}: not a repository:tag")
            tags[tag] = {"args": values, "dockerfile": str(call.cwd / name),
                         "context": str(call.cwd / rest[0])}
        built.write_text(json.dumps(tags))
    elif args[:2] == ["push", "--all-tags"] and len(args) == 3:
        if not any(t.rsplit(":", 1)[0] == args[2] for t in tags):
            raise Emulation(f"docker push --all-tags {args[2]}: no tag of it was built")
    else:
        raise Emulation(f"docker {' '.join(args)}: outside the grammar this emulation checks")
    call.record(args)
    return 0


def gcloud(call: Call, args: list[str]) -> int:
    if args == ["auth", "print-access-token"]:
        print("ya29.emulated-token")
    elif args[:2] == ["storage", "cat"] and len(args) == 3 and args[2].startswith("gs://"):
        path = call.run / "gcs" / args[2].removeprefix("gs://")
        if not path.is_file():
            print("ERROR: (gcloud.storage.cat) The following URLs matched no objects or files:"
                  f"\n-{args[2]}", file=sys.stderr)
            return 1
        sys.stdout.write(path.read_text())
    else:
        raise Emulation(f"gcloud {' '.join(args)}: outside the grammar this emulation checks")
    call.record(args)
    return 0


def curl(call: Call, args: list[str]) -> int:
    opts, rest = options(args, {"-fsS": "flag", "-X": "value", "-H": "value", "-d": "value"})
    if len(rest) != 1 or not rest[0].startswith("https://"):
        raise Emulation(f"curl takes one https URL, got {rest}")
    data = (opts.get("-d") or [""])[0]
    body = call.read(data[1:], "-d @file") if data.startswith("@") else data
    call.record(args, url=rest[0], method=(opts.get("-X") or ["GET"])[0],
                headers=opts.get("-H", []), body=body)
    print("{}")
    return 0


def az(call: Call, args: list[str]) -> int:
    state = call.state()
    if args[:2] == ["extension", "add"]:
        opts, _ = options(args[2:], {"-n": "value", "--name": "value"})
        state["az"] = sorted({*state["az"], *(opts.get("-n", []) + opts.get("--name", []))})
        call.save(state)
        call.record(args)
    elif args[:2] == ["acr", "build"]:
        opts, rest = options(args[2:], {"--registry": "value", "-r": "value", "--image": "value",
                                        "-t": "value", "--file": "value", "-f": "value",
                                        "--build-arg": "value"})
        if len(rest) != 1 or not (opts.get("--registry") or opts.get("-r")):
            raise Emulation(f"az acr build needs --registry and one context: {args}")
        values = call.build_args((opts.get("--file") or opts.get("-f") or ["Dockerfile"])[0],
                                 rest[0], opts.get("--build-arg", []))
        call.record(args, build_args=values)
    elif args[:3] == ["ml", "job", "create"]:
        if "ml" not in state["az"]:
            raise Emulation("az ml: the ml extension is not installed in this job "
                            "(az extension add -n ml); the CLI would prompt for it and fail")
        opts, rest = options(args[3:], {"-f": "value", "--file": "value", "-g": "value",
                                        "--resource-group": "value", "-w": "value",
                                        "--workspace-name": "value", "--stream": "flag"})
        if rest or not (opts.get("-g") or opts.get("--resource-group")) or not (
                opts.get("-w") or opts.get("--workspace-name")):
            raise Emulation(f"az ml job create needs -f, -g and -w: {args}")
        spec = call.read((opts.get("-f") or opts.get("--file") or [""])[0], "job file")
        call.record(args, file=spec)
    else:
        raise Emulation(f"az {' '.join(args)}: outside the grammar this emulation checks")
    return 0


def project_python(call: Call, args: list[str]) -> int:
    """The project image's python: this venv's, the image's files mapped to their sources;
    a command that stops only for want of Google or Azure credentials counts as done."""
    copies: dict[str, str] = call.image["files"]

    def local(value: str) -> str:
        for target, source in copies.items():
            if value == target or value.startswith(target + "/"):
                return source + value[len(target):]
        return value

    env = {k: local(v) for k, v in os.environ.items()}
    env.update(NO_GCE_CHECK="true", HTTP_PROXY="http://127.0.0.1:9",
               HTTPS_PROXY="http://127.0.0.1:9", NO_PROXY="")
    done = subprocess.run([str(VENV / "bin" / "python"), *map(local, args)], env=env,
                          capture_output=True, text=True, check=False)
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    stopped = done.returncode != 0 and re.search(
        r"DefaultCredentialsError|CredentialUnavailableError|ClientAuthenticationError",
        done.stderr)
    call.record(args, rc=done.returncode, stopped_for_credentials=bool(stopped),
                env={k: os.environ.get(k, "") for k in call.image["env"]})
    return 0 if stopped else done.returncode


def pulumi(call: Call, args: list[str]) -> int:
    raise Emulation(f"pulumi {' '.join(args)}: runs through pulumi/actions, not a run: step")


HANDLERS = {"apt-get": apt_get, "debian-python": debian_python, "pip": pip, "make": make,
            "docker": docker, "gcloud": gcloud, "curl": curl, "az": az,
            "project-python": project_python, "pulumi": pulumi, "npx": npx}


def main(argv: list[str]) -> int:
    split = argv.index("--")
    opts = dict(zip(argv[:split:2], argv[1:split:2], strict=True))
    call = Call(opts["--tool"], Path(opts["--bin"]), Path(opts["--container"]),
                Path(opts["--run"]))
    try:
        return HANDLERS[call.tool["handler"]](call, argv[split + 1:])
    except Emulation as exc:
        print(f"emulation: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
