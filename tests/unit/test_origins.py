"""The origins browsers may send a site's events from (sites/origins.py)."""

from __future__ import annotations

import pytest

from tapioca.sites.origins import Origin, on_domains, parse_origin, policy_of, site_accepts
from tapioca.sites.site import Site


@pytest.mark.parametrize(
    ("header", "origin"),
    [
        ("https://shop.example", Origin("shop.example", None)),
        ("https://WWW.Shop.Example", Origin("shop.example", None)),
        ("http://shop.example:8080", Origin("shop.example", 8080)),
        ("http://127.0.0.1:5173", Origin("127.0.0.1", 5173)),
        ("http://[::1]:3000", Origin("::1", 3000)),
        ("null", None),  # a sandboxed frame or a local file
        ("", None),
        ("shop.example", None),  # no scheme: no origin
        ("http://shop.example:99999", None),  # no port
    ],
)
def test_an_origin_header_is_read_into_host_and_port(header: str, origin: Origin | None) -> None:
    assert parse_origin(header) == origin


@pytest.mark.parametrize(
    ("header", "domains", "on"),
    [
        ("https://shop.example", ("shop.example",), True),
        ("http://shop.example:8443", ("shop.example",), True),  # any scheme and port
        ("https://www.shop.example", ("shop.example",), True),
        ("https://shop.example", ("www.shop.example",), True),
        ("https://eu.shop.example", ("shop.example",), True),  # below a domain
        ("https://eu.shop.example", ("*.shop.example",), True),
        ("https://shop.example.evil", ("shop.example",), False),
        ("https://evilshop.example", ("shop.example",), False),
        ("https://example", ("shop.example",), False),  # above a domain
        ("http://localhost:3000", ("localhost:3000",), True),  # a domain with its port
        ("http://localhost:3001", ("localhost:3000",), False),
        ("http://localhost", ("localhost:3000",), False),
        ("https://blog.example", ("shop.example", "blog.example"), True),
        ("https://blog.example", (), False),
    ],
)
def test_an_origin_is_on_a_domain_or_below_one(
    header: str, domains: tuple[str, ...], on: bool
) -> None:
    origin = parse_origin(header)
    assert origin is not None
    assert on_domains(origin, domains) is on


def test_a_site_accepts_its_domains_or_any_origin_as_it_says() -> None:
    shop, elsewhere = parse_origin("https://shop.example"), parse_origin("https://else.example")
    own = Site("shop", domains=("shop.example",), any_origin=False)
    anywhere = Site("open", any_origin=True)
    unsaid = Site("new", domains=("shop.example",))  # any_origin None: the default
    for default in (False, True):
        assert site_accepts(own, shop, default) and not site_accepts(own, elsewhere, default)
        assert not site_accepts(own, None, default)  # "null" is on no domain
        assert site_accepts(anywhere, elsewhere, default) and site_accepts(anywhere, None, default)
        assert site_accepts(unsaid, shop, default)
        assert site_accepts(unsaid, elsewhere, default) is default
        assert site_accepts(unsaid, None, default) is default


def test_the_sites_together_accept_what_any_of_them_accepts() -> None:
    shop, blog = Site("shop", domains=("shop.example",), any_origin=False), Site("blog")
    elsewhere = parse_origin("https://else.example")
    on_blog = parse_origin("https://blog.example")
    closed = policy_of([shop, Site("b", domains=("blog.example",), any_origin=False)], True, False)
    assert closed.any_origin is False
    assert closed.domains == ("blog.example", "shop.example")
    assert closed.accepts(on_blog) and not closed.accepts(elsewhere) and not closed.accepts(None)
    # a site that does not say follows the default
    assert policy_of([shop, blog], any_by_default=True, new_sites=False).accepts(elsewhere)
    assert not policy_of([shop, blog], any_by_default=False, new_sites=False).accepts(elsewhere)
    # events of a site not made yet make one that follows the default
    assert policy_of([shop], any_by_default=True, new_sites=True).accepts(elsewhere)
    assert not policy_of([shop], any_by_default=True, new_sites=False).accepts(elsewhere)
    assert not policy_of([shop], any_by_default=False, new_sites=True).accepts(elsewhere)
    assert not policy_of([], any_by_default=False, new_sites=True).accepts(on_blog)
