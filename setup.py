"""Build hook: ship the engine's SQL (<repo>/sql/**/*.sql) inside the package as pgqrs/sql/.

Everything else is in pyproject.toml. An editable install skips the copy: the package then reads <repo>/sql.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildPyWithSql(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        src = ROOT / "sql"
        dst = Path(self.build_lib) / "pgqrs" / "sql"
        for f in sorted(src.rglob("*.sql")):
            rel = f.relative_to(src)
            if rel.parts[0] == "fixtures":  # test data, not part of the engine
                continue
            (dst / rel.parent).mkdir(parents=True, exist_ok=True)
            self.copy_file(str(f), str(dst / rel))


setup(cmdclass={"build_py": BuildPyWithSql})
