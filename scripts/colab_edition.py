"""Write the Colab edition of the chapters into ``colab/`` (``make colab`` runs it).

Usage (from the repository root)::

    .venv/bin/python scripts/colab_edition.py          # regenerate colab/*.ipynb
    .venv/bin/python scripts/colab_edition.py --check  # exit 1, naming the files, if colab/ is out of date

Google Colab renders none of the book's MyST markup, so the Colab launch button opens ``colab/<chapter>.ipynb``,
a copy of the chapter in plain Jupyter Markdown that the local Sphinx extension ``_ext/colab_edition.py``
writes after every HTML build (into ``_build/colab/``). This script runs such a build into a temporary folder,
with the notebooks *not* executed (the edition holds no outputs, so it does not need them; about 20 s),
and copies the result into ``colab/``, deleting files there that no chapter produces any more. The strict,
executed build of ``tests/test_book.py`` generates the edition too, and
``tests/test_colab_edition.py`` fails when ``colab/`` differs from it, so
a change to a chapter is not finished until this has been run and ``colab/`` committed.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
EDITION = ROOT / "colab"


def unexecuted_config(config: dict, root: Path) -> dict:
    """The book's configuration with execution off and the local extensions' folders made absolute.

    Jupyter Book reads ``sphinx.local_extensions`` relative to the configuration file, which here lives in a
    temporary folder.
    """
    config = dict(config)
    config["execute"] = {**config.get("execute", {}), "execute_notebooks": "off"}
    sphinx = dict(config.get("sphinx", {}))
    sphinx["local_extensions"] = {name: str((root / path).resolve()) + "/"
                                  for name, path in sphinx.get("local_extensions", {}).items()}
    config["sphinx"] = sphinx
    return config


def build_edition(root: Path, work: Path) -> Path:
    """Build ``root``'s book without executing it, under ``work``; the folder holding its Colab edition."""
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    work.mkdir(parents=True, exist_ok=True)
    config_path = work / "_config.yml"
    config_path.write_text(yaml.safe_dump(unexecuted_config(config, root), sort_keys=False), encoding="utf-8")
    jupyter_book = str(Path(sys.executable).with_name("jupyter-book"))
    # Not -W: a figure exists only once its cell has run, so a reference to one warns in this build. The
    # extension numbers figures from the cells instead, and the strict build checks those numbers.
    result = subprocess.run([jupyter_book, "build", "--all", "--keep-going", "--config", str(config_path),
                             "--path-output", str(work), str(root)], capture_output=True, text=True)
    edition = work / "_build" / "colab"
    if result.returncode != 0 or not edition.is_dir():
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        raise SystemExit(f"the book build for the Colab edition failed (exit code {result.returncode})")
    return edition


def differences(generated: Path, committed: Path) -> list[str]:
    """The files in which ``committed`` differs from ``generated`` (missing, extra or changed)."""
    new = {path.name: path for path in generated.glob("*.ipynb")}
    old = {path.name: path for path in committed.glob("*.ipynb")} if committed.is_dir() else {}
    changed = [f"{name} (missing)" for name in sorted(set(new) - set(old))]
    changed += [f"{name} (no chapter produces it)" for name in sorted(set(old) - set(new))]
    changed += [f"{name} (out of date)" for name in sorted(set(new) & set(old))
                if new[name].read_bytes() != old[name].read_bytes()]
    return changed


def copy_edition(generated: Path, committed: Path) -> None:
    """Make ``committed`` hold exactly the notebooks of ``generated``."""
    committed.mkdir(exist_ok=True)
    for stale in committed.glob("*.ipynb"):
        if not (generated / stale.name).exists():
            stale.unlink()
    for notebook in generated.glob("*.ipynb"):
        shutil.copyfile(notebook, committed / notebook.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare colab/ with a fresh build")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="colab-edition-") as work:
        generated = build_edition(ROOT, Path(work))
        changed = differences(generated, EDITION)
        if args.check:
            for line in changed:
                print(f"colab/{line}")
            if changed:
                print("colab/ is out of date: run `make colab` and commit colab/", file=sys.stderr)
            return 1 if changed else 0
        copy_edition(generated, EDITION)
    print(f"colab/: {len(list(EDITION.glob('*.ipynb')))} notebooks, {len(changed)} changed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
