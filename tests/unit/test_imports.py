"""Candidate workspace paths named by a file's imports."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reaper_lsp.core.imports import import_targets


def test_python_absolute_imports_resolve_in_a_src_layout_and_packages_to_init() -> None:
    found = import_targets("python", "import shop.tax\n", "src/shop/billing/invoice.py")
    assert found[:2] == ["src/shop/tax.py", "src/shop/tax/__init__.py"]
    assert "shop/tax.py" in found  # a flat layout is tried too


def test_python_from_imports_name_the_module_and_possible_submodules() -> None:
    text = "from shop.models import (\n    Order,  # orders\n    Invoice as Inv,\n)\n"
    found = import_targets("python", text, "shop/billing.py")
    assert found[0] == "shop/models.py"
    assert {"shop/models/__init__.py", "shop/models/Order.py", "shop/models/Invoice.py"} <= set(
        found
    )


def test_python_relative_imports_climb_one_folder_per_extra_dot() -> None:
    text = "from . import helpers\nfrom ..core.taxes import rate\nfrom .sub import thing\n"
    found = import_targets("python", text, "shop/billing/invoice.py")
    assert found[:3] == ["shop/billing/helpers.py", "shop/core/taxes.py", "shop/billing/sub.py"]
    assert "shop/billing/__init__.py" in found  # `from . import x` may mean a name in it


def test_python_standard_library_and_future_imports_name_nothing() -> None:
    text = "import os, json\nfrom collections import abc\nfrom __future__ import annotations\n"
    assert import_targets("python", text, "a.py") == []


def test_typescript_relative_specifiers_try_typescript_first_then_index_files() -> None:
    text = "import { a,\n  b } from './util';\nimport React from 'react';\n"
    found = import_targets("typescript", text, "web/app/page.ts")
    assert found[:3] == ["web/app/util.ts", "web/app/util.tsx", "web/app/util.d.ts"]
    assert "web/app/util/index.ts" in found
    assert not any("react" in path for path in found)


def test_javascript_prefers_javascript_and_follows_require_dynamic_import_and_reexport() -> None:
    text = (
        "const legacy = require('./legacy');\n"
        "const lazy = await import('../lazy.mjs');\n"
        "export * from './types';\n"
        "import './side-effect.js';\n"
    )
    found = import_targets("javascript", text, "web/app/main.js")
    assert found[:4] == [
        "web/app/legacy.js",
        "web/lazy.mjs",
        "web/app/types.js",
        "web/app/side-effect.js",
    ]


def test_typescript_esm_imports_of_js_files_mean_the_typescript_source() -> None:
    found = import_targets("typescript", "import { x } from './x.js';\n", "src/a.ts")
    assert found == ["src/x.js", "src/x.ts", "src/x.tsx"]


def test_stylesheets_and_other_assets_are_not_code() -> None:
    text = "import './app.css';\nimport logo from './logo.svg';\nimport data from './d.json';\n"
    assert import_targets("typescriptreact", text, "src/App.tsx") == []


def test_go_imports_under_the_module_are_package_folders() -> None:
    text = (
        'package main\n\nimport "fmt"\nimport (\n\t"net/http"\n'
        '\ttx "example.com/shop/internal/tax"\n\t"example.com/shop"\n)\n'
    )
    found = import_targets("go", text, "cmd/server/main.go", go_module="example.com/shop")
    assert found == ["internal/tax/", "./"]
    nested = import_targets(
        "go", text, "svc/cmd/main.go", go_module="example.com/shop", go_module_dir="svc"
    )
    assert nested == ["svc/internal/tax/", "svc/"]


def test_go_without_a_module_path_names_nothing() -> None:
    assert import_targets("go", 'import "example.com/shop/tax"\n', "main.go") == []


def test_rust_mod_declarations_follow_the_file_layout() -> None:
    assert import_targets("rust", "mod tax;\n", "src/lib.rs") == ["src/tax.rs", "src/tax/mod.rs"]
    assert import_targets("rust", "pub mod a;\n", "src/orders.rs")[0] == "src/orders/a.rs"
    assert import_targets("rust", "mod a;\n", "src/orders/mod.rs")[0] == "src/orders/a.rs"


def test_rust_use_paths_resolve_from_the_crate_self_and_super() -> None:
    text = (
        "mod tax;\n"
        "use crate::billing::{invoice::Invoice, totals::{sum, Total}};\n"
        "use super::shared::CONFIG;\n"
        "use serde::Deserialize;\n"
        "use tax::rate;\n"
    )
    found = import_targets("rust", text, "crates/shop/src/orders/mod.rs")
    root = "crates/shop/src/"
    assert found[:6] == [
        root + "orders/tax.rs",
        root + "billing/invoice.rs",  # Invoice is a type: its module is the file
        root + "billing/totals/sum.rs",  # sum may be a module (or a function of totals)
        root + "billing/totals.rs",
        root + "shared.rs",
        root + "orders/tax/rate.rs",
    ]
    assert not any("serde" in path for path in found)


def test_the_cap_keeps_every_imports_best_guess() -> None:
    text = "".join(f"import {{ f{i} }} from './m{i}';\n" for i in range(10))
    found = import_targets("typescript", text, "a.ts", limit=12)
    assert len(found) == 12
    assert found[:10] == [f"m{i}.ts" for i in range(10)]


def test_other_languages_name_nothing() -> None:
    assert import_targets("markdown", "import x from './y'\n", "README.md") == []


def test_paths_leaving_the_workspace_are_dropped() -> None:
    assert import_targets("javascript", "import x from '../../etc/passwd'\n", "a/b.js") == []
    assert import_targets("python", "from ... import x\n", "a/b.py") == []


IMPORTISH = st.sampled_from(
    [
        "import a.b\n", "from . import x\n", "from ..p import (q,\n r)\n", "mod m;\n",
        "use crate::{a, b::{C, d}};\n", "use super::super::x;\n", 'import "ex.com/m/p"\n',
        "import x from '../y';\n", "require('./z')\n", "from .... import deep\n",
    ]
)  # fmt: skip


@given(
    st.sampled_from(["python", "javascript", "typescript", "go", "rust", "c"]),
    st.lists(st.one_of(IMPORTISH, st.text(max_size=40)), max_size=20),
    st.sampled_from(["a.py", "src/lib.rs", "x/y/z.ts", "cmd/main.go", "p/q/mod.rs"]),
    st.integers(min_value=0, max_value=40),
)
def test_targets_are_capped_unique_and_inside_the_workspace(
    language: str, parts: list[str], current: str, limit: int
) -> None:
    found = import_targets(language, "".join(parts), current, go_module="ex.com/m", limit=limit)
    assert len(found) <= limit
    assert len(found) == len(set(found))
    for path in found:
        assert not path.startswith(("/", "../")) and "/../" not in path
