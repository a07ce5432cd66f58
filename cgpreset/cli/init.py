"""`cgpreset init DIR`: scaffold a GitOps repo (presets, templates, watchlist, .gitignore, hooks, CI).

The hook and the workflow run `generate --check`, which covers the Kubernetes base too once
deploy/kubernetes/ exists. The workflow installs the cgpreset pinned in requirements-cgpreset.txt
(the version that ran `init`), from the team's own package index or git URL: cgpreset is not on
PyPI, and an unpinned public name would install whatever someone publishes under it.
"""

from __future__ import annotations

from pathlib import Path

import click

from cgpreset import __version__
from cgpreset.errors import OutputError

#: The package's own copies of the committed inputs.
_DATA = Path(__file__).resolve().parent.parent / "data"

GITIGNORE = """\
# cgpreset's store (SQLite and its WAL side files) and the demo's output: data, not config
*.db
*.db-wal
*.db-shm
/cgpreset-demo/
.env
"""

PRE_COMMIT = """\
# pre-commit: the generated configs (and the Kubernetes base in deploy/kubernetes/, once generated)
# are up to date and valid (no key needed)
repos:
  - repo: local
    hooks:
      - id: cgpreset-generate-check
        name: cgpreset configs and base are up to date
        entry: cgpreset generate --out deploy --offline --check --diff
        language: system
        pass_filenames: false
        files: ^(presets/|templates/|deploy/)
      - id: cgpreset-validate
        name: cgpreset validate
        entry: cgpreset validate
        language: system
        files: ^deploy/[^/]+\\.ya?ml$
"""

CI = """\
# CI (no key needed): the committed configs are valid and match presets/ and templates/, and so does
# the Kubernetes base (deploy/kubernetes/) once generated. cgpreset is installed as pinned in
# requirements-cgpreset.txt, from your package index (the repository variable CGPRESET_INDEX_URL) or
# the git URL written there: never from PyPI, where the name is not this package.
name: cgpreset
on: [push, pull_request]
jobs:
  check:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with: {python-version: "3.12"}
      - name: install the cgpreset pinned in requirements-cgpreset.txt
        env:
          CGPRESET_INDEX_URL: ${{ vars.CGPRESET_INDEX_URL }}
        run: |
          if [ -n "$CGPRESET_INDEX_URL" ]; then
            pip install --index-url "$CGPRESET_INDEX_URL" -r requirements-cgpreset.txt
          elif grep -q '^cgpreset @ ' requirements-cgpreset.txt; then
            pip install -r requirements-cgpreset.txt
          else
            echo "::error::set CGPRESET_INDEX_URL (your package index) or a git URL in requirements-cgpreset.txt"
            exit 1
          fi
      - run: cgpreset validate deploy/
      - run: cgpreset generate --out deploy --offline --check --diff
"""

REQUIREMENTS = f"""\
# The cgpreset that CI installs: the version that wrote this repo's files (cgpreset init {__version__}).
# Keep it the version you generate with: `generate --check` compares with what this version writes.
# cgpreset is not on PyPI. Either set the repository variable CGPRESET_INDEX_URL to the package index
# that serves it (with its dependencies), or replace the line below with the git URL you install from:
#   cgpreset @ git+https://git.example.com/tools/cgpreset.git@v{__version__}
cgpreset=={__version__}
"""

README = """\
# CoinGlass presets

- `presets/sol.yaml`: the production preset; `presets/watchlist.yaml`: which coins get a config.
- `templates/`: how a coin config is written.
- `deploy/`: the generated configs (commit them, with `deploy/.cgpreset/discovery.json`); with
  `cgpreset generate --out deploy --kubernetes`, the Kubernetes base in `deploy/kubernetes/`, which
  every `generate` then keeps in step.
- `requirements-cgpreset.txt`: the cgpreset CI installs (pinned; set `CGPRESET_INDEX_URL` or a git URL).

    COINGLASS_API_KEY=... cgpreset generate --out deploy   # discover and write deploy/
    cgpreset validate deploy/                               # offline check
    cgpreset run-preset deploy/                             # fetch into ./cgpreset.db
"""


def scaffold_files() -> dict[str, bytes]:
    """Every file `init` writes, by path relative to DIR (sorted, so the listing is stable)."""
    files: dict[str, bytes] = {}
    for folder in ("presets", "templates"):
        for path in sorted((_DATA / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                files[f"{folder}/{path.relative_to(_DATA / folder).as_posix()}"] = path.read_bytes()
    files[".gitignore"] = GITIGNORE.encode()
    files[".pre-commit-config.yaml"] = PRE_COMMIT.encode()
    files[".github/workflows/cgpreset.yml"] = CI.encode()
    files["requirements-cgpreset.txt"] = REQUIREMENTS.encode()
    files["README.md"] = README.encode()
    return dict(sorted(files.items()))


@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite files that exist (default: keep them and say so).")
def init_cmd(directory: Path, force: bool) -> None:
    """Scaffold a GitOps repo in DIRECTORY: presets/ (the SOL preset and the watchlist),
    templates/, a .gitignore for the store, a pre-commit config and a CI workflow that check the
    generated configs and Kubernetes base, requirements-cgpreset.txt (the cgpreset CI installs,
    pinned to this version), and a short README. Files that exist are kept unless --force.

    \b
    Example:
        cgpreset init coinglass-configs && cd coinglass-configs && cgpreset generate --out deploy
    """
    from cgpreset._io import write_atomic

    written = kept = 0
    for rel, data in scaffold_files().items():
        target = directory / rel
        if target.exists() and not force:
            kept += 1
            click.echo(f"kept {target.as_posix()} (exists; --force overwrites)", err=True)
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"{target.parent.as_posix()}: cannot create the folder: {exc.strerror or exc}") from None
        write_atomic(target, data)
        written += 1
        click.echo(f"wrote {target.as_posix()}")
    click.echo(f"{written} file(s) written, {kept} kept in {directory.as_posix()}; next: "
               f"cd {directory.as_posix()} && cgpreset generate --out deploy", err=True)
