"""Check a catalog's entrypoints before anyone launches them: `python -m engine.catalog_check`.

The node must not import flows (nor the engine): it runs this module as a short-lived
process, which imports every entrypoint the way an executor would and answers, per flow,
every error found (a module with a SyntaxError, a missing module or attribute, an object
the engine cannot run, every mistake of a YAML crew spec, a tool that does not import),
the input schema derived from a plain callable's signature (`engine.signature_schema`),
its docstring's first paragraph, and the source files it imported (what `--reload`
watches). `koco validate` runs the same check on one file or entrypoint.

Reads `{"python_path": [...], "flows": [{"name", "entrypoint"}]}` on stdin and writes
`{"flows": {name: {"errors", "input_schema", "description", "files"}}}` to the file named
by its argument (or stdout); the flows' own output during imports goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any, TextIO

from engine import loader


def _error(e: BaseException) -> str:
    if isinstance(e, SyntaxError):
        where = f"{e.filename}:{e.lineno}" if e.filename else "?"
        return f"SyntaxError in {where}: {e.msg}"
    if isinstance(e, loader.EntrypointError):
        cause = e.__cause__
        if isinstance(cause, SyntaxError):
            return _error(cause)
        return str(e)
    frames = traceback.extract_tb(e.__traceback__)
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(e).__name__}: {e}{where}"


def _source_files(names: set[str], roots: list[Path]) -> list[str]:
    """Files of the modules in `names` that live under the flows' folders (not installed)."""
    files = []
    for name in sorted(names):
        file = getattr(sys.modules.get(name), "__file__", None)
        if not file:
            continue
        path = Path(file).resolve()
        if "site-packages" in path.parts or "dist-packages" in path.parts:
            continue
        if any(path.is_relative_to(root) for root in roots):
            files.append(str(path))
    return files


def _check_spec(entrypoint: str) -> tuple[list[str], list[str]]:
    from engine.crew.spec import check_spec, load_spec

    errors = [str(e) for e in check_spec(entrypoint)]
    files = [str(Path(entrypoint).expanduser().resolve())]
    if errors:
        return errors, files
    spec = load_spec(entrypoint)
    for agent in spec.agents.values():
        for tool in agent.tools:
            try:
                loader.load(tool)
            except Exception as e:
                errors.append(f"{entrypoint}: agents.{agent.key}.tools: {tool}: {_error(e)}")
    return errors, files


def check_entry(entrypoint: str, roots: list[Path]) -> dict[str, Any]:
    """One flow's verdict (see the module docstring)."""
    from engine.adapters import adapter_for
    from engine.signature_schema import SignatureError, first_paragraph, signature_schema

    result: dict[str, Any] = {"errors": [], "input_schema": None, "description": "", "files": []}
    if entrypoint.strip().endswith(loader.YAML_SUFFIXES):
        result["errors"], result["files"] = _check_spec(entrypoint.strip())
        return result
    before = set(sys.modules)
    # The entrypoint's own module too (an earlier entry of the same module imported it).
    parts = entrypoint.partition(":")[0].split(".")
    own = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    try:
        target = loader.load(entrypoint)
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt):
            raise
        result["errors"].append(_error(e))
        # What did import, and the file with the SyntaxError: fixing them is a change.
        files = _source_files((set(sys.modules) - before) | own, roots)
        syntax = e if isinstance(e, SyntaxError) else e.__cause__
        if isinstance(syntax, SyntaxError) and syntax.filename:
            files.append(str(Path(syntax.filename).resolve()))
        result["files"] = files
        return result
    result["files"] = _source_files((set(sys.modules) - before) | own, roots)
    try:
        adapter_for(target)
    except TypeError as e:
        result["errors"].append(f"{entrypoint}: {e}")
        return result
    try:
        result["input_schema"] = signature_schema(target)
    except SignatureError as e:
        result["errors"].append(str(e))
    result["description"] = first_paragraph(target)
    return result


def check_catalog(request: dict[str, Any]) -> dict[str, Any]:
    python_path = tuple(str(p) for p in request.get("python_path", ()))
    loader.add_python_path(python_path)
    roots = [Path(p).resolve() for p in python_path] or [Path.cwd().resolve()]
    flows = {}
    for flow in request.get("flows", ()):
        flows[str(flow["name"])] = check_entry(str(flow["entrypoint"]), roots)
    return {"flows": flows}


def main(argv: list[str] | None = None, stdin: TextIO = sys.stdin) -> None:
    """The verdict goes to the file named by the first argument, or to stdout."""
    args = sys.argv[1:] if argv is None else argv
    request = json.load(stdin)
    out = sys.stdout
    # The flows' imports may print: keep stdout for the answer alone.
    sys.stdout = sys.stderr
    os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("CREWAI_DISABLE_VERSION_CHECK", "true")
    text = json.dumps(check_catalog(request)) + "\n"
    if args:
        Path(args[0]).write_text(text, encoding="utf-8")
    else:
        out.write(text)
        out.flush()


if __name__ == "__main__":
    main()
