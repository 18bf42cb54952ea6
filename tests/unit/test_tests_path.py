"""Where "Write tests" puts the tests of a file (`services/code_actions.tests_path`), the rule
README states: Python into `test_<name>.py` — an existing one first (the project's `tests/`
folder, then beside the file), else in `tests/` when the project has that folder, else beside
the file; JavaScript/TypeScript `<name>.test.<ext>` and other languages `<name>_test.<ext>`,
beside the file."""

from __future__ import annotations

from pathlib import Path

from reaper_lsp.services.code_actions import tests_path as where_tests_go


def project(tmp_path: Path, *files: str) -> Path:
    root = tmp_path / "project"
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("")
    root.mkdir(exist_ok=True)
    return root


def test_python_goes_into_the_projects_tests_folder_when_it_has_one(tmp_path: Path) -> None:
    root = project(tmp_path, "tests/__init__.py", "src/pkg/calc.py")
    assert where_tests_go(root / "src/pkg/calc.py", [root]) == root / "tests" / "test_calc.py"


def test_python_without_a_tests_folder_goes_beside_the_file(tmp_path: Path) -> None:
    root = project(tmp_path, "src/pkg/calc.py")
    assert where_tests_go(root / "src/pkg/calc.py", [root]) == root / "src/pkg/test_calc.py"


def test_an_existing_python_test_file_is_used(tmp_path: Path) -> None:
    root = project(tmp_path, "tests/conftest.py", "src/calc.py", "src/test_calc.py")
    assert where_tests_go(root / "src/calc.py", [root]) == root / "src/test_calc.py"
    (root / "tests/test_calc.py").write_text("")
    assert where_tests_go(root / "src/calc.py", [root]) == root / "tests/test_calc.py"


def test_other_languages_go_beside_the_file(tmp_path: Path) -> None:
    root = project(tmp_path, "tests/x.py")
    assert where_tests_go(root / "web/app.ts", [root]) == root / "web/app.test.ts"
    assert where_tests_go(root / "web/app.jsx", [root]) == root / "web/app.test.jsx"
    assert where_tests_go(root / "cmd/main.go", [root]) == root / "cmd/main_test.go"
    assert where_tests_go(root / "lib/util.rs", [root]) == root / "lib/util_test.rs"
