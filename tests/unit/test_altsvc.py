"""Alt-Svc parsing (RFC 7838) and the h3 endpoint cache: expiry by `ma`, `clear`, the QUIC
failure memory, and persistence in an owner-only file."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reaper_lsp.net.altsvc import (
    ALT_SVC_FILE,
    MAX_AGE_CAP,
    Alternative,
    AltSvcCache,
    parse_alt_svc,
)
from reaper_lsp.net.auto import AutoTransport

ORIGIN = "https://api.example.com:443"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_parses_the_common_cloudflare_value() -> None:
    assert parse_alt_svc(['h3=":443"; ma=86400']) == [Alternative("h3", "", 443, 86400.0)]


def test_parses_several_entries_quoted_hosts_and_default_max_age() -> None:
    values = ['h3-29=":8443", h3="alt.example.com:443"; persist=1', 'h2="[::1]:9000"; ma=60']
    assert parse_alt_svc(values) == [
        Alternative("h3-29", "", 8443, 86400.0),
        Alternative("h3", "alt.example.com", 443, 86400.0),
        Alternative("h2", "::1", 9000, 60.0),
    ]


def test_quoted_parameters_may_hold_separators() -> None:
    assert parse_alt_svc(['h3=":443"; note="a,b;c"; ma="30"']) == [Alternative("h3", "", 443, 30.0)]


def test_clear_and_malformed_entries() -> None:
    assert parse_alt_svc(["clear"]) is None
    assert parse_alt_svc(['h3=":notaport", h3, h3=":0", h3=":443"; ma=x']) == [
        Alternative("h3", "", 443, 86400.0)
    ]


def test_cache_expires_entries_by_max_age() -> None:
    clock = Clock()
    cache = AltSvcCache(clock=clock)
    cache.learn(ORIGIN, ['h3=":4433"; ma=60'])
    assert cache.lookup(ORIGIN) == ("api.example.com", 4433)
    clock.now += 61
    assert cache.lookup(ORIGIN) is None


def test_responses_without_alt_svc_keep_it_and_clear_forgets_it() -> None:
    cache = AltSvcCache()
    cache.learn(ORIGIN, ['h3=":443"'])
    cache.learn(ORIGIN, [])
    assert cache.lookup(ORIGIN) == ("api.example.com", 443)
    cache.learn(ORIGIN, ['h2=":443"'])  # a new list without h3 replaces the old one
    assert cache.lookup(ORIGIN) is None
    cache.learn(ORIGIN, ['h3=":443"'])
    cache.learn(ORIGIN, ["clear"])
    assert cache.lookup(ORIGIN) is None


def test_failure_memory_lapses() -> None:
    clock = Clock()
    cache = AltSvcCache(clock=clock)
    cache.mark_broken(ORIGIN, 300)
    assert cache.broken(ORIGIN)
    clock.now += 301
    assert not cache.broken(ORIGIN)


def test_cache_persists_privately_and_drops_expired_entries(tmp_path: Path) -> None:
    clock = Clock()
    cache = AltSvcCache(tmp_path, clock=clock)
    cache.learn(ORIGIN, ['h3="quic.example.com:443"; ma=100'])
    cache.learn("https://other.example.com:443", ['h3=":443"; ma=10'])
    cache.mark_broken("https://other.example.com:443", 5)
    assert stat.S_IMODE((tmp_path / ALT_SVC_FILE).stat().st_mode) == 0o600
    clock.now += 50
    again = AltSvcCache(tmp_path, clock=clock)
    assert again.lookup(ORIGIN) == ("quic.example.com", 443)
    assert again.lookup("https://other.example.com:443") is None
    assert not again.broken("https://other.example.com:443")


def test_an_unreadable_file_is_an_empty_cache(tmp_path: Path) -> None:
    (tmp_path / ALT_SVC_FILE).write_text("{not json")
    assert AltSvcCache(tmp_path).lookup(ORIGIN) is None


def test_caches_sharing_a_directory_keep_each_others_entries(tmp_path: Path) -> None:
    first, second = AltSvcCache(tmp_path), AltSvcCache(tmp_path)  # one per provider client
    first.learn(ORIGIN, ['h3=":443"'])
    second.learn("https://other.example.com:443", ['h3=":8443"'])
    second.mark_broken("https://other.example.com:443", 60)
    again = AltSvcCache(tmp_path)
    assert again.lookup(ORIGIN) == ("api.example.com", 443)
    assert again.lookup("https://other.example.com:443") == ("other.example.com", 8443)
    assert again.broken("https://other.example.com:443")


def test_ticket_stores_sharing_a_directory_keep_each_others_tickets(tmp_path: Path) -> None:
    from reaper_lsp.net.h3_state import TicketStore, decode_ticket

    now = time.time()
    ticket = decode_ticket(
        {
            "age_add": 7,
            "cipher_suite": 0x1301,
            "not_valid_after": now + 3600,
            "not_valid_before": now - 1,
            "resumption_secret": "c2VjcmV0",
            "server_name": "api.example.com",
            "ticket": "dGlja2V0",
            "max_early_data_size": 0xFFFFFFFF,
            "other_extensions": [[57, "AQI="]],
        }
    )
    first, second = TicketStore(tmp_path), TicketStore(tmp_path)
    first.put("a", ticket)
    second.put("b", ticket)
    assert TicketStore(tmp_path).has("a") and TicketStore(tmp_path).has("b")
    taken = first.take("a")
    assert taken is not None and taken.other_extensions == [(57, b"\x01\x02")]
    reloaded = TicketStore(tmp_path)
    assert not reloaded.has("a") and reloaded.has("b")


# Hostile or garbled headers: parsing never fails a response.


def test_a_huge_max_age_is_clamped_not_an_overflow() -> None:
    huge = 'h3=":443"; ma=' + "9" * 400
    assert parse_alt_svc([huge]) == [Alternative("h3", "", 443, MAX_AGE_CAP)]
    cache = AltSvcCache()
    cache.learn(ORIGIN, [huge])
    assert cache.lookup(ORIGIN) == ("api.example.com", 443)


@pytest.mark.parametrize("ma", ["-5", "+5", "5_000", "٥", "1e3", "0x10", " ", ""])
def test_a_max_age_that_is_not_plain_digits_is_ignored(ma: str) -> None:
    assert parse_alt_svc([f'h3=":443"; ma={ma}']) == [Alternative("h3", "", 443, 86400.0)]


@pytest.mark.parametrize(
    "authority",
    ["[::1", "::1]:443", "[::1]x:443", "[]:443", "[not-ipv6]:443", "::1:443", "[::1]:",
     "host:", ":", "host", "ho st:443", "host:0", "host:65536", "host:٤٤٣", "host:+443",
     "host:4_43", "a/b:443", "a@b:443", ":99999999999999999999"],
)  # fmt: skip
def test_invalid_authorities_are_skipped(authority: str) -> None:
    assert parse_alt_svc([f'h3="{authority}"']) == []


def test_valid_authorities_are_kept() -> None:
    values = ['h3="[::1]:443", h3="[2001:db8::1]:8443", h3="quic.example.com:443", h3=":1"']
    assert [(a.host, a.port) for a in parse_alt_svc(values) or []] == [
        ("::1", 443), ("2001:db8::1", 8443), ("quic.example.com", 443), ("", 1)
    ]  # fmt: skip


def test_an_unbalanced_bracket_does_not_mark_anything_broken() -> None:
    cache = AltSvcCache()
    cache.learn(ORIGIN, ['h3="[::1"'])
    assert cache.lookup(ORIGIN) is None and not cache.broken(ORIGIN)


@given(st.lists(st.text(max_size=80), max_size=3))
def test_parsing_and_learning_arbitrary_values_never_raises(values: list[str]) -> None:
    alternatives = parse_alt_svc(values)
    for alternative in alternatives or []:
        assert 0 < alternative.port < 65536
        assert 0 <= alternative.max_age <= MAX_AGE_CAP
    AltSvcCache().learn(ORIGIN, values)


@pytest.mark.parametrize(
    "value", ['h3=":443"; ma=' + "9" * 400, 'h3="[::1"', 'h3=":443"; ma=99999999999999999999']
)
async def test_a_bad_alt_svc_header_never_fails_the_response(value: str) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"alt-svc": value}, text="ok")

    auto = AutoTransport(httpx.MockTransport(answer), mode="auto")
    async with httpx.AsyncClient(transport=auto) as client:
        response = await client.get("https://api.example.com/v1/models")
    assert response.text == "ok"
    assert not auto.altsvc.broken(ORIGIN)


# Corrupted state files: one bad file must not take every network provider down.

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
"""Any JSON value, infinities and NaN included (json writes and reads them back)."""
CLEAN = {"h3": {}, "broken": {}}
LIVE = {"host": "quic.example.com", "port": 443, "expires": 2_000_000.0}
INF = float("inf")
MALFORMED = [
    {"h3": 5}, {"h3": "x"}, {"broken": 5}, {"broken": "x"}, {"h3": {ORIGIN: "string"}},
    {"h3": {ORIGIN: [1, 2]}}, [1, 2], "text",
    {"h3": {ORIGIN: {**LIVE, "port": INF}}}, {"h3": {ORIGIN: {**LIVE, "port": 1e20}}},
    {"h3": {ORIGIN: {**LIVE, "port": True}}}, {"h3": {ORIGIN: {**LIVE, "port": 0}}},
    {"h3": {ORIGIN: {**LIVE, "host": "[:"}}}, {"h3": {ORIGIN: {**LIVE, "host": ""}}},
    {"h3": {ORIGIN: {**LIVE, "host": 5}}}, {"h3": {ORIGIN: {**LIVE, "expires": INF}}},
    {"h3": {ORIGIN: {**LIVE, "expires": 1e20}}}, {"h3": {ORIGIN: {**LIVE, "expires": "1"}}},
    {"broken": {ORIGIN: 1e20}}, {"broken": {ORIGIN: INF}}, {"broken": {ORIGIN: True}},
]  # fmt: skip
"""Shapes no AltSvcCache writes (`INF` is written as JSON's Infinity, 1e400 read back)."""


def _write_raw(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    path.chmod(0o600)
    return path


def _load_json(path: Path) -> object:
    import json

    return json.loads(path.read_text())


@pytest.mark.parametrize("data", MALFORMED)
def test_a_malformed_alt_svc_file_counts_as_empty_and_is_rewritten(
    tmp_path: Path, data: object
) -> None:
    import json

    path = _write_raw(tmp_path, ALT_SVC_FILE, json.dumps(data))
    cache = AltSvcCache(tmp_path, clock=Clock())
    assert cache.lookup(ORIGIN) is None and not cache.broken(ORIGIN)
    assert _load_json(path) == CLEAN
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("text", ["[" * 100_000, "{not json", "\xff", "", "1e400"])
def test_an_unparsable_alt_svc_file_counts_as_empty_and_is_rewritten(
    tmp_path: Path, text: str
) -> None:
    path = _write_raw(tmp_path, ALT_SVC_FILE, text)
    assert AltSvcCache(tmp_path, clock=Clock()).lookup(ORIGIN) is None
    assert _load_json(path) == CLEAN


def test_malformed_entries_go_and_good_ones_stay(tmp_path: Path) -> None:
    import json

    good = "https://good.example.com:443"
    data = {"h3": {good: LIVE, ORIGIN: "x"}, "broken": {good: 1_000_100.0, ORIGIN: 1e20}}
    path = _write_raw(tmp_path, ALT_SVC_FILE, json.dumps(data))
    cache = AltSvcCache(tmp_path, clock=Clock())
    assert cache.lookup(good) == ("quic.example.com", 443) and cache.broken(good)
    assert cache.lookup(ORIGIN) is None and not cache.broken(ORIGIN)
    assert _load_json(path) == {"h3": {good: LIVE}, "broken": {good: 1_000_100.0}}


def test_saving_beside_a_malformed_entry_of_another_process_drops_it(tmp_path: Path) -> None:
    cache = AltSvcCache(tmp_path, clock=Clock())
    _write_raw(tmp_path, ALT_SVC_FILE, '{"h3": {"https://x:443": {"port": 1e400}}, "broken": 7}')
    cache.learn(ORIGIN, ['h3=":443"'])
    assert AltSvcCache(tmp_path, clock=Clock()).lookup(ORIGIN) == ("api.example.com", 443)
    assert set(_load_json(tmp_path / ALT_SVC_FILE)["h3"]) == {ORIGIN}  # type: ignore[index]


def test_a_bad_state_file_leaves_plain_http_working(tmp_path: Path) -> None:
    from reaper_lsp.net.h3_state import QuicOptions

    _write_raw(tmp_path, ALT_SVC_FILE, '{"h3": 5}')

    async def go() -> str:
        answer = httpx.MockTransport(lambda request: httpx.Response(200, text="ok"))
        auto = AutoTransport(answer, quic=QuicOptions(state_dir=tmp_path))
        async with httpx.AsyncClient(transport=auto) as client:
            return (await client.get("http://127.0.0.1:8080/infill")).text

    import asyncio

    assert asyncio.run(go()) == "ok"


@given(JSON, JSON, JSON)
def test_any_json_in_the_alt_svc_file_loads_and_leaves_a_clean_file(
    whole: object, h3_entry: object, broken: object
) -> None:
    import json
    import tempfile

    shaped = {"h3": {ORIGIN: {**LIVE, "port": h3_entry}}, "broken": {ORIGIN: broken}}
    for data in (whole, {"h3": {ORIGIN: h3_entry}, "broken": broken}, shaped):
        with tempfile.TemporaryDirectory() as tmp:
            path = _write_raw(Path(tmp), ALT_SVC_FILE, json.dumps(data))
            cache = AltSvcCache(Path(tmp), clock=Clock())
            found = cache.lookup(ORIGIN)
            assert found is None or 0 < found[1] < 65536
            again = _load_json(path)
            kept = {
                "h3": {ORIGIN: {**LIVE, "port": found[1]}} if found else {},
                "broken": {ORIGIN: broken} if cache.broken(ORIGIN) else {},
            }
            assert again in (data, CLEAN, kept)
