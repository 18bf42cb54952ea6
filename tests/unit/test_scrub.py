"""What may leave the machine: excluded files, and credential-shaped strings replaced by a
placeholder naming their kind while everything that merely looks random stays."""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import random
import string
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from reaper_lsp.core.scrub import (
    DEFAULT_EXCLUDE,
    KINDS,
    REDACTION_PATTERNS,
    Exclusions,
    looks_secret,
    placeholder,
    scrub,
    scrub_json,
)

# -- Fake credentials with the real shapes (random, never real keys) ---------------------------

RNG = random.Random(20250101)
ALNUM = string.ascii_letters + string.digits
B64URL = ALNUM + "-_"
HEX = "0123456789abcdef"
UPPER_ALNUM = string.ascii_uppercase + string.digits


def fake(n: int, alphabet: str = ALNUM) -> str:
    """`n` random characters of `alphabet`, with a capital and a digit when it has them (as any
    random credential that long does)."""
    wanted = [kind for kind in (string.ascii_uppercase, string.digits) if set(kind) & set(alphabet)]
    while True:
        value = "".join(RNG.choice(alphabet) for _ in range(n))
        if all(set(kind) & set(value) for kind in wanted):
            return value


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def fake_jwt() -> str:
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": fake(8)}).encode())
    payload = b64url(json.dumps({"sub": fake(12), "exp": 1893456000}).encode())
    return f"{header}.{payload}.{b64url(RNG.randbytes(256))}"


def fake_pem(label: str, headers: str = "", lines: int = 12) -> str:
    body = base64.b64encode(RNG.randbytes(48 * lines)).decode()
    rows = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {label}-----\n{headers}{rows}\n-----END {label}-----"


TOKENS: dict[str, list[str]] = {
    "aws-access-key": [
        "AKIA" + fake(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
        "ASIA" + fake(16, UPPER_ALNUM),
    ],
    "github-token": [
        *(f"gh{kind}_" + fake(36) for kind in "pousr"),
        "github_pat_" + fake(22) + "_" + fake(59),
    ],
    "openai-key": [
        "sk-" + fake(48),
        "sk-proj-" + fake(156, B64URL),
        "sk-svcacct-" + fake(120, B64URL),
        "sk-" + fake(32, HEX),  # OpenAI-compatible services
    ],
    "anthropic-key": [
        "sk-ant-api03-" + fake(93, B64URL) + "AA",
        "sk-ant-admin01-" + fake(93, B64URL) + "AA",
    ],
    "google-api-key": ["AIza" + fake(35, B64URL)],
    "slack-token": [
        f"xoxb-{fake(12, string.digits)}-{fake(13, string.digits)}-{fake(24)}",
        f"xoxp-{fake(12, string.digits)}-{fake(12, string.digits)}-{fake(13, string.digits)}-"
        + fake(32, HEX),
    ],
    "stripe-key": ["sk_live_" + fake(99), "rk_live_" + fake(24), "sk_test_" + fake(24)],
    "jwt": [fake_jwt()],
    "google-access-token": ["ya29.a0" + fake(150, B64URL)],
    "google-refresh-token": ["1//0g" + fake(100, B64URL)],
    "copilot-token": [
        f"tid={fake(32, HEX)};exp=1712345678;sku=copilot_for_business_seat;st=dotcom;chat=1;"
        f"8kp=1:{fake(64, HEX)}"
    ],
    "private-key": [
        fake_pem("RSA PRIVATE KEY"),
        fake_pem("EC PRIVATE KEY", lines=3),
        fake_pem("OPENSSH PRIVATE KEY"),
        fake_pem("PRIVATE KEY"),
        fake_pem("ENCRYPTED PRIVATE KEY"),
        fake_pem("RSA PRIVATE KEY", "Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,ABCD1234\n\n"),
        fake_pem("PGP PRIVATE KEY BLOCK", "Version: GnuPG v2\n\n"),
    ],
}
SAMPLES = [(kind, value) for kind, values in TOKENS.items() for value in values]

# Lines that assign a secret: (line, the secret in it, kind).
AWS_SECRET = fake(40, ALNUM + "/+")
ASSIGNED = [
    (f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET, "aws-secret-key"),
    (f'"SecretAccessKey": "{AWS_SECRET}",', AWS_SECRET, "aws-secret-key"),
    (f"export AWS_SECRET_ACCESS_KEY={AWS_SECRET}", AWS_SECRET, "aws-secret-key"),
    ('password = "Xk9#mQ2zP!w"', "Xk9#mQ2zP!w", "password"),
    ("DB_PASSWORD=s3cr3tValue9Xq", "s3cr3tValue9Xq", "password"),
    ('  "client_secret": "GOCSPX-1a2B3c4D5e6F7g8H9i0JkLmNoP",', "GOCSPX-1a2B3c4D5e6F7g8H9i0JkLmNoP",
     "password"),
    ("api_key: 9f8e7d6c5b4a39281706f5e4d3c2b1a0", "9f8e7d6c5b4a39281706f5e4d3c2b1a0", "password"),
    ('token := "f3Kq9ZxL0pWm7RtY"', "f3Kq9ZxL0pWm7RtY", "password"),
    (":password => 'q8Zr!t2Lw#9v'", "q8Zr!t2Lw#9v", "password"),
    ('password: str = "q8Zr!t2Lw#9v"', "q8Zr!t2Lw#9v", "password"),
    ("config['passwd'] = 'hunter2!Xy'", "hunter2!Xy", "password"),
    ('const authToken = "a1B2c3D4e5F6g7H8";', "a1B2c3D4e5F6g7H8", "password"),
    ('PRIVATE_KEY = "0x4c0883a69102937d6231471b5dbb6204fe512961708279f3c1a7b6b2e4f2a1d0"',
     "0x4c0883a69102937d6231471b5dbb6204fe512961708279f3c1a7b6b2e4f2a1d0", "password"),
    ("--db-password=p@ssw0rd", "p@ssw0rd", "password"),
    ('curl -H "Authorization: Bearer 9aZ8bY7cX6dW5eV4fU3gT2hS"', "9aZ8bY7cX6dW5eV4fU3gT2hS",
     "bearer-token"),
    ("authorization: bearer AbCdEf0123456789.ghIJkl~mn/op+", "AbCdEf0123456789.ghIJkl~mn/op+",
     "bearer-token"),
]  # fmt: skip


# -- Excluded files ----------------------------------------------------------------------------

DEFAULTS = Exclusions.of()


@pytest.mark.parametrize(
    "path",
    [
        ".env", "app/.env", ".env.production", "deploy/.env.local", "certs/server.pem",
        "tls.key", "store.p12", "client.pfx", "id_rsa", "keys/id_rsa.pub", "id_ed25519",
        "id_ecdsa_sk", ".netrc", ".npmrc", ".pypirc", ".git-credentials", "gcp-credentials.json",
        "config/my_credentials_prod.json", "secrets.yaml", "config/secrets.json", "vault.kdbx",
        "/tmp/elsewhere/.env",
    ],
)  # fmt: skip
def test_default_patterns_exclude_the_usual_secret_files(path: str) -> None:
    assert DEFAULTS.excludes(path)


@pytest.mark.parametrize(
    "path",
    [
        "src/main.py", "environment.py", "README.md", "docs/secrets-management.md",
        "credentials.py", "package.json", "monkey.py", "keys.ts", "src/env/config.py",
        ".config/nvim/init.lua", "/home/ann/.docker/daemon.json",
    ],
)  # fmt: skip
def test_ordinary_files_are_not_excluded(path: str) -> None:
    assert not DEFAULTS.excludes(path)


@pytest.mark.parametrize("path", [".ENV", "app/.Env.Local", "Server.PEM", "ID_RSA", "SECRETS.YML"])
def test_matching_ignores_case_as_windows_and_macos_do(path: str) -> None:
    assert DEFAULTS.excludes(path)


def test_windows_paths_are_read_with_either_separator() -> None:
    exclusions = Exclusions.of(home="C:\\Users\\Ann")
    assert exclusions.excludes("C:\\Users\\Ann\\project\\.env")
    assert exclusions.excludes("c:/users/ann/.ssh/config")
    assert exclusions.excludes("app\\certs\\server.pem")
    assert not exclusions.excludes("C:\\Users\\Ann\\project\\main.py")


def test_a_pattern_with_a_slash_matches_the_path_from_the_workspace_root() -> None:
    exclusions = Exclusions(("config/*.yml", "**/deploy/*.tfvars", "/build/out.txt", "private/"))
    assert exclusions.excludes("config/prod.yml")
    assert not exclusions.excludes("other/config/prod.yml")
    assert not exclusions.excludes("config/sub/prod.yml")  # `*` stops at "/"
    assert exclusions.excludes("deploy/prod.tfvars")
    assert exclusions.excludes("infra/eu/deploy/prod.tfvars")
    assert exclusions.excludes("build/out.txt") and exclusions.excludes("/build/out.txt")
    assert not exclusions.excludes("src/build/out.txt")
    assert exclusions.excludes("private/notes.md") and exclusions.excludes("a/private/b/c.txt")
    assert not exclusions.excludes("private.md")


def test_classes_and_question_marks_work_as_in_fnmatch() -> None:
    exclusions = Exclusions(("backup-?.sql", "*.[ch]key", "dump[!0-9].txt", "odd[.txt"))
    assert exclusions.excludes("backup-1.sql") and not exclusions.excludes("backup-12.sql")
    assert exclusions.excludes("a.ckey") and exclusions.excludes("b.hkey")
    assert not exclusions.excludes("c.xkey")
    assert exclusions.excludes("dumpa.txt") and not exclusions.excludes("dump1.txt")
    assert exclusions.excludes("odd[.txt")  # an unclosed class is a literal "["


def test_dotdot_and_dot_segments_cannot_hide_a_path() -> None:
    assert DEFAULTS.excludes("src/../.env")
    assert DEFAULTS.excludes("./config/./secrets.toml")
    assert Exclusions(("config/*.yml",)).excludes("config/x/../prod.yml")


@pytest.mark.parametrize(
    "path",
    [
        "/home/ann/.ssh/config", "/home/ann/.ssh/known_hosts", "/home/ann/.aws/config",
        "/home/ann/.gnupg/pubring.kbx", "/home/ann/.config/gh/hosts.yml",
        "/home/ann/.docker/config.json", "/home/ann/.kube/config", "~/.ssh/config",
        ".aws/credentials", "../.aws/credentials", "../../.kube/config",
    ],
)  # fmt: skip
def test_secret_stores_under_home_are_excluded_whatever_the_patterns(path: str) -> None:
    assert Exclusions((), home="/home/ann").excludes(path)


def test_only_the_home_directory_holds_those_stores() -> None:
    exclusions = Exclusions((), home="/home/ann")
    assert not exclusions.excludes("/home/annie/.ssh/config")
    assert not exclusions.excludes("/home/ann/code/.kube/config")
    assert not exclusions.excludes("/home/ann/.config/nvim/init.lua")
    assert not Exclusions(()).excludes("/home/ann/.ssh/config")  # home unknown


def test_a_workspace_can_add_patterns_but_never_remove_the_defaults() -> None:
    emptied = Exclusions.of(defaults=[], extra=[], workspace_extra=["*.sqlite"])
    assert emptied.excludes(".env") and emptied.excludes("certs/a.pem")
    assert emptied.excludes("db.sqlite")
    assert set(DEFAULT_EXCLUDE) <= set(emptied.patterns)
    user = Exclusions.of(defaults=["*.tfstate"], extra=["notes/"], workspace_extra=[" ", ""])
    assert user.excludes("main.tfstate") and user.excludes("notes/a.md")
    assert user.excludes(".npmrc")
    assert len(user.patterns) == len(set(user.patterns))


NAME_CHARS = st.sampled_from([*"abcxyzEKNV._-", "env", "pem", "key", "id_rsa", "secrets", "cred"])


@given(
    name=st.lists(NAME_CHARS, min_size=1, max_size=8).map("".join),
    directory=st.sampled_from(["", "src/", "a/b/", "/opt/x/"]),
)
def test_name_patterns_agree_with_fnmatch_ignoring_case(name: str, directory: str) -> None:
    assume(name not in (".", "..") and not name.startswith((".ssh", ".aws", ".gnupg")))
    expected = any(fnmatch.fnmatchcase(name.lower(), p.lower()) for p in DEFAULT_EXCLUDE)
    assert Exclusions(DEFAULT_EXCLUDE).excludes(directory + name) == expected


# -- Credential shapes -------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "secret"), SAMPLES, ids=[f"{k}-{i}" for i, (k, _) in
                                                           enumerate(SAMPLES)])  # fmt: skip
def test_each_kind_of_credential_becomes_a_placeholder_naming_it(kind: str, secret: str) -> None:
    for context in ("{}", "x = '{}'\n", 'url: "{}"', "  KEY={} # note", "({})", '{{"k": "{}"}}'):
        text = context.format(secret)
        scrubbed = scrub(text)
        assert scrubbed.text == context.format(placeholder(kind)), context
        assert (scrubbed.count, scrubbed.kinds) == (1, (kind,))


def test_a_key_is_scrubbed_in_its_json_escaped_form_too() -> None:
    pem = TOKENS["private-key"][3]
    service_account = json.dumps({"type": "service_account", "private_key": pem + "\n"})
    scrubbed = scrub(service_account)
    assert "MII" not in scrubbed.text and "BEGIN" not in scrubbed.text
    assert json.loads(scrubbed.text)["private_key"] == placeholder("private-key") + "\n"


def test_a_key_cut_in_two_by_a_prompt_budget_is_scrubbed_on_both_sides() -> None:
    pem = TOKENS["private-key"][0]
    cut = len(pem) // 2
    prefix, suffix = "config = '''\n" + pem[:cut], pem[cut:] + "\n'''\nprint(config)"
    assert scrub(prefix).text == "config = '''\n" + placeholder("private-key")
    assert scrub(suffix).text == placeholder("private-key") + "\n'''\nprint(config)"


def test_code_that_mentions_the_key_markers_is_not_a_key() -> None:
    text = (
        'if "-----BEGIN RSA PRIVATE KEY-----" in pem and "-----END RSA PRIVATE KEY-----" in pem:\n'
        '    raise ValueError("-----BEGIN PRIVATE KEY----- expected")\n'
    )
    assert scrub(text).text == text


@pytest.mark.parametrize(("line", "secret", "kind"), ASSIGNED)
def test_an_assigned_secret_keeps_its_name_separator_and_quotes(
    line: str, secret: str, kind: str
) -> None:
    scrubbed = scrub(line)
    assert scrubbed.text == line.replace(secret, placeholder(kind))
    assert (scrubbed.count, scrubbed.kinds) == (1, (kind,))


@pytest.mark.parametrize(
    "line",
    [
        "token = get_token()", 'password = ""', 'password = "changeme"',
        'secret = os.environ["X"]', 'api_key = "<your key here>"', 'api_key = "xxxxxxxx"',
        'API_KEY = "YOUR_API_KEY_HERE"', "password = hashlib.sha256(raw).hexdigest()",
        'token_url = "https://oauth2.googleapis.com/token"', 'api_key_env = "OPENAI_API_KEY"',
        'token_type = "Bearer"', "PASSWORD=$DB_PASSWORD", "token: ${{ secrets.GITHUB_TOKEN }}",
        'auth_method = "oauth2/device-code"', 'secret_name = "prod/db/password-v2"',
        'token_format = "tok_%08x_%s"', "--secret-bg: #1a2b3c4d;", 'password: "password123"',
        'token_expires_at: "2024-10-01T12:00:00Z"', 'author = "jane.doe42@example.org"',
        'tokenizer = "bert-base-uncased"', "max_tokens = 128000", "if password == other:",
        "Authorization: Bearer ${TOKEN}", 'headers["Authorization"] = f"Bearer {token}"',
        "password = self.access_token_value", 'token_pattern = r"(?u)\\b\\w\\w+\\b"',
        'password = "a1a1a1a1a1"', 'test_token: "abab1212abab"', 'password = "fake-Pa55w0rd!"',
        'API_KEY = "dummy_9f8e7d6c5b4a"', 'secret: "Example-S3cr3t-Value"',
    ],
)  # fmt: skip
def test_names_assigned_a_non_secret_are_left_alone(line: str) -> None:
    assert scrub(line).text == line


LOOK_ALIKES = {
    "uuid": f'request_id = "{uuid.UUID(int=RNG.getrandbits(128))}"',
    "git sha": f"commit {hashlib.sha1(b'x').hexdigest()} Merge branch 'main'",
    "sha256": f"sha256:{hashlib.sha256(b'x').hexdigest()}",
    "sha512": f'digest = "{hashlib.sha512(b"x").hexdigest()}"',
    "npm integrity": (
        '    "node_modules/js-tokens": {\n      "version": "4.0.0",\n      "resolved": '
        '"https://registry.npmjs.org/js-tokens/-/js-tokens-4.0.0.tgz",\n      "integrity": "sha512-'
        + base64.b64encode(hashlib.sha512(b"js-tokens").digest()).decode()
        + '"\n    },'
    ),
    "poetry.lock": (
        'files = [\n    {file = "certifi-2024.2.2-py3-none-any.whl", hash = "sha256:'
        + hashlib.sha256(b"certifi").hexdigest()
        + '"},\n]'
    ),
    "png data url": '<img src="data:image/png;base64,'
    + base64.b64encode(RNG.randbytes(3000)).decode()
    + '">',
    "kebab words": "task-list disk-sk-" + fake(48) + " mask-image risk-free-" + fake(24),
    "css colours": ".btn { color: #1a2b3c; background: #ff00aa80; border-color: rgb(1, 2, 3); }",
    "long identifiers": "very_long_function_name_with_many_parts_and_a_token_count_2 = 1",
    "docstring": '"""Return the password for `user`.\n\nThe token: a JWT the server signed."""',
    "base64 config": "logo: " + base64.b64encode(RNG.randbytes(600)).decode(),
}


@pytest.mark.parametrize("name", list(LOOK_ALIKES))
def test_random_looking_strings_that_are_not_credentials_survive(name: str) -> None:
    text = LOOK_ALIKES[name]
    assert scrub(text).text == text


def test_the_projects_own_source_dense_with_auth_code_comes_back_unchanged() -> None:
    package = Path(__file__).resolve().parents[2] / "reaper_lsp"
    changed = {}
    for path in sorted(package.rglob("*.py")):
        scrubbed = scrub(path.read_text(encoding="utf-8"))
        if scrubbed.count:
            changed[path.name] = scrubbed.kinds
    assert changed == {}


LEADS = ["ghp_", "gho_", "github_pat_", "sk-", "sk-ant-", "sk_live_", "rk_test_", "xoxb-", "1//0",
         "AIza", "ya29."]  # fmt: skip


@pytest.mark.parametrize("lead", LEADS)
def test_a_name_that_merely_starts_like_a_token_is_left_alone(lead: str) -> None:
    # Random credentials that long always hold a capital or a digit; names do not.
    for rest in ("abcdefghijklmnopqrstuvwxyz" * 2, "very_long_snake_case_name_of_a_setting_here",
                 "kebab-case-name-of-some-css-class-or-other"):  # fmt: skip
        assert scrub(f"x = {lead}{rest}\n").text == f"x = {lead}{rest}\n"


@given(lead=st.sampled_from(LEADS), rest=st.text(string.ascii_lowercase + "_-", max_size=80))
def test_a_lead_followed_by_lower_case_text_is_left_alone(lead: str, rest: str) -> None:
    assert scrub(f"{lead}{rest} ").text == f"{lead}{rest} "


@pytest.mark.parametrize("kind", KINDS)
def test_placeholders_match_no_shape(kind: str) -> None:
    for context in ("{}", 'password = "{}"', "api_key={}", "Authorization: Bearer {}", "({})"):
        text = context.format(placeholder(kind))
        assert scrub(text).text == text


def test_a_name_assigned_a_harmless_value_does_not_hide_the_next_assignment() -> None:
    # Found by hypothesis: the first "password" took the second as its value, declined it, and
    # the real assignment after it was only seen on a second scrub.
    for line in (
        'password = password = "Xk9#mQ2zP!w"',
        'db_password = password_hash = "Xk9#mQ2zP!w"',
    ):
        assert scrub(line).text == line.replace("Xk9#mQ2zP!w", placeholder("password"))


def test_the_most_specific_kind_wins_where_shapes_overlap() -> None:
    key, jwt = TOKENS["openai-key"][0], TOKENS["jwt"][0]
    assert scrub(f'api_key = "{key}"').text == f'api_key = "{placeholder("openai-key")}"'
    assert scrub(f"Authorization: Bearer {jwt}").text == (
        f"Authorization: Bearer {placeholder('jwt')}"
    )


def test_kinds_are_listed_once_each_and_sorted() -> None:
    aws, gh = TOKENS["aws-access-key"][0], TOKENS["github-token"][0]
    scrubbed = scrub(f"{gh}\n{aws}\n{gh}\n")
    assert scrubbed.count == 3
    assert scrubbed.kinds == ("aws-access-key", "github-token")
    assert set(scrubbed.kinds) <= set(KINDS)


def test_every_kind_is_named_in_kinds() -> None:
    assert {kind for kind, _ in SAMPLES} | {kind for _, _, kind in ASSIGNED} == set(KINDS)


def test_a_credential_glued_to_a_scrubbed_one_is_scrubbed_and_the_result_is_stable() -> None:
    aws = TOKENS["aws-access-key"][0]
    text = TOKENS["private-key"][0] + aws + "\n"
    once = scrub(text)
    assert once.text == placeholder("private-key") + placeholder("aws-access-key") + "\n"
    assert scrub(once.text).text == once.text


def test_the_log_redactor_knows_every_shape_scrub_knows() -> None:
    for kind, secret in SAMPLES:
        assert any(p.search(secret) for p in REDACTION_PATTERNS), kind


def test_looks_secret_tells_random_values_from_names_and_placeholders() -> None:
    for value in ("Xk9#mQ2zP!w", "a8f5f167f44f4964e6c998dee827110c", "kQzWmPxRtLvBnJhY"):
        assert looks_secret(value), value
    for value in ("changeme", "getAccessToken", "OPENAI_API_KEY", "v1.2.3-beta4", "a1a1a1a1a1"):
        assert not looks_secret(value), value


# -- JSON request bodies -----------------------------------------------------------------------


def test_scrub_json_cleans_every_string_and_keeps_the_shape() -> None:
    gh, aws = TOKENS["github-token"][0], TOKENS["aws-access-key"][0]
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": f"token {gh} and {aws}"}],
        "stop": ("\n\n", gh),
        aws: None,
        "n": 1,
        "stream": True,
        "temperature": 0.2,
    }
    cleaned, count = scrub_json(body)
    gh_, aws_ = placeholder("github-token"), placeholder("aws-access-key")
    assert count == 4
    assert cleaned == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": f"token {gh_} and {aws_}"}],
        "stop": ("\n\n", gh_),
        aws_: None,
        "n": 1,
        "stream": True,
        "temperature": 0.2,
    }
    assert body["messages"][0]["content"].endswith(aws)  # type: ignore[index]  # a copy


def test_scrub_json_leaves_a_clean_body_equal_and_counts_nothing() -> None:
    body = {"prompt": "def add(a, b):\n    return a + b\n", "suffix": "", "max_tokens": 64}
    assert scrub_json(body) == (body, 0)


# -- Properties --------------------------------------------------------------------------------

PIECES = st.sampled_from(
    [
        *(value for _, value in SAMPLES[::3]), *(line for line, _, _ in ASSIGNED[::3]),
        "sk-", "sk_live_", "ghp_", "github_pat_", "AKIA", "AIza", "xoxb-", "eyJ", "ya29.", "1//0",
        "tid=", ";exp=1", "-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----",
        "password = ", "secret: ", "Bearer ", "api_key=", "<secret:jwt>", "<", ">", "\n", " ",
        "=", ":", '"', "'", "-", "_", "/", "+", ".", "A", "z", "9", "Zk9", fake(20), fake(40),
    ]
)  # fmt: skip
HOSTILE = st.lists(PIECES, max_size=25).map("".join)


@given(HOSTILE)
def test_scrubbing_twice_gives_the_result_of_scrubbing_once(text: str) -> None:
    once = scrub(text)
    twice = scrub(once.text)
    assert twice.text == once.text and twice.count == 0


# Lower-case words, punctuation and every lead and name a shape starts with: no digit and no
# capital, which every random credential of a credential's length has.
PROSE = st.lists(
    st.sampled_from(
        [
            "sk-", "sk_live_", "ghp_", "github_pat_", "xoxb-", "tid=", ";exp=", "bearer ",
            "password", "secret", "token", "api_key", "auth", "=", ":", '"', "'", "-", "_", "/",
            "+", ".", " ", "\n", "(", ")", "[", "]", "{", "}", "#", "abcdefghij", "xyz",
            "qwertyuiopasdfghjkl", "-----begin rsa private key-----",
        ]
    ) | st.text(alphabet=string.ascii_lowercase + " \n\t.,;:=-_'\"()", max_size=30),
    max_size=30,
).map("".join)  # fmt: skip


@given(PROSE)
def test_text_without_digits_or_capitals_comes_back_unchanged(text: str) -> None:
    assert scrub(text).text == text


SEPARATORS = st.text(alphabet=" \n\t\"'=:,;()[]{}<>|", max_size=6)


@given(sample=st.sampled_from(SAMPLES), before=SEPARATORS, after=SEPARATORS)
def test_a_credential_between_separators_never_survives(
    sample: tuple[str, str], before: str, after: str
) -> None:
    kind, secret = sample
    scrubbed = scrub(before + secret + after)
    assert secret not in scrubbed.text
    assert placeholder(kind) in scrubbed.text


# -- Cost --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "token" * 2048, "token=" * 1700, "password=" + "x" * 10240 + " ",
        "-----BEGIN RSA PRIVATE KEY-----\n" * 320 + "!", "ya29." * 2048 + "!", "A" * 10240,
        "auth: " + "a, " * 3400, "sk-Ab1." * 1460, ("eyJabcdefghijk." * 680),
    ],
    ids=["names", "assignments", "long-value", "begins", "ya29", "capitals", "annotation", "sk",
         "jwt-parts"],
)  # fmt: skip
def test_hostile_text_costs_linear_time_not_quadratic(text: str) -> None:
    # 10 KB; linear is ~1 ms even on a loaded machine, quadratic was over a second.
    start = time.perf_counter()
    scrub(text)
    assert time.perf_counter() - start < 0.25
