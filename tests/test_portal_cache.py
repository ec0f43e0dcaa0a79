"""The portal's kept pages (hub.web.portal.cache): per path, language and viewer, emptied when
the database's state changes, bounded, and never for a request with other query parameters."""

from __future__ import annotations

from starlette.requests import Request

from hub.access import ANONYMOUS, Viewer
from hub.web.portal.cache import OVERHEAD, Page, PageCache

STAFF = Viewer.of_role("viewer", "sozialamt", "vera")


def request(path: str, query: str = "") -> Request:
    return Request({"type": "http", "method": "GET", "path": path,
                    "query_string": query.encode(), "headers": []})


def test_a_page_is_kept_per_path_language_and_viewer() -> None:
    cache = PageCache(lambda: 1)
    missed = cache.lookup(request("/"), "de", ANONYMOUS, None)
    assert missed.page is None
    cache.keep(missed, Page(b"de", b""))
    assert cache.lookup(request("/", "lang=de"), "de", ANONYMOUS, None).page == Page(b"de", b"")
    assert cache.lookup(request("/"), "en", ANONYMOUS, None).page is None
    assert cache.lookup(request("/"), "de", STAFF, "vera").page is None
    assert cache.lookup(request("/orte/crinitz"), "de", ANONYMOUS, None).page is None


def test_a_new_state_empties_the_cache_and_a_page_of_an_old_one_is_not_kept() -> None:
    state = [1]
    cache = PageCache(lambda: state[0])
    first = cache.lookup(request("/"), "de", ANONYMOUS, None)
    cache.keep(first, Page(b"old", b""))
    state[0] = 2
    second = cache.lookup(request("/"), "de", ANONYMOUS, None)
    assert second.page is None and len(cache) == 0
    cache.keep(first, Page(b"made before the change", b""))  # looked up in state 1
    assert len(cache) == 0
    cache.keep(second, Page(b"new", b""))
    assert cache.lookup(request("/"), "de", ANONYMOUS, None).page == Page(b"new", b"")


def test_other_query_parameters_are_not_kept_and_the_size_is_bounded() -> None:
    cache = PageCache(lambda: 1, max_bytes=3 * (1 + OVERHEAD))
    found = cache.lookup(request("/", "q=x"), "de", ANONYMOUS, None)
    assert found.key is None
    cache.keep(found, Page(b"x", b""))
    assert len(cache) == 0
    for n in range(5):
        cache.keep(cache.lookup(request(f"/orte/{n}"), "de", ANONYMOUS, None),
                   Page(str(n).encode(), b""))
    assert len(cache) == 3
    assert cache.lookup(request("/orte/0"), "de", ANONYMOUS, None).page is None
    assert cache.lookup(request("/orte/4"), "de", ANONYMOUS, None).page == Page(b"4", b"")
    assert cache.nbytes == 3 * (1 + OVERHEAD) <= cache.max_bytes


def test_the_kept_pages_stay_within_the_byte_bound_whatever_their_sizes() -> None:
    cache = PageCache(lambda: 1, max_bytes=100_000)
    for n in range(200):
        page = Page(b"h" * (n * 37 % 9000), b"g" * (n * 11 % 2000))
        cache.keep(cache.lookup(request(f"/orte/{n}"), "de", ANONYMOUS, None), page)
        assert cache.nbytes == sum(p.nbytes for p in cache._pages.values()) <= 100_000
    assert 0 < len(cache) < 200
    cache.keep(cache.lookup(request("/orte/big"), "de", ANONYMOUS, None),
               Page(b"x" * 200_000, b""))  # larger than the whole bound: not kept
    assert cache.lookup(request("/orte/big"), "de", ANONYMOUS, None).page is None
    assert cache.nbytes <= 100_000
