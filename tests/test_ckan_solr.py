"""The Solr/Lucene subset of CKAN's `package_search` (`q`, `fq`, `fq_list`) compiled into catalog
search expressions; see ../shared/reference/ckan-dcat.md §1.5 and §1.8."""

from __future__ import annotations

import contextlib
import datetime as dt
import random

import pytest

from hub.api.ckan.solr import SEARCHABLE, SearchQueryError, parse_query
from hub.catalog.expr import (
    KEYWORD_FIELDS,
    RANGE_FIELDS,
    TEXT_FIELDS,
    All,
    And,
    Exists,
    Expr,
    Match,
    Not,
    Or,
    Range,
    Text,
)

NOW = dt.datetime(2024, 3, 31, 12, 34, 56, 789012)  # naive UTC, end of a month, leap year
NOW_ISO = "2024-03-31T12:34:56.789012"
NOTHING = Not(All())
PUBLIC = Match("access", "public")


def parse(q: str | None, *fq: str) -> Expr:
    return parse_query(q, fq, now=NOW)


def words(*w: str, field: str | None = None, phrase: bool = False, prefix: bool = False) -> Text:
    return Text(field, w, phrase=phrase, prefix=prefix)


def changed(low: str | None, high: str | None, il: bool = True, ih: bool = True) -> Range:
    return Range("changed", low, high, il, ih)


def rejected(q: str, *fq: str) -> str:
    with pytest.raises(SearchQueryError) as caught:
        parse(q, *fq)
    return str(caught.value)


# -- everything -----------------------------------------------------------------------------------

@pytest.mark.parametrize("q", [None, "", "   ", "\t\n ", '""', ' "" ', "*:*", " *:* ", "*",
                               "(*:*)", "*:* AND *", "site_id:*", "dataset_type:dataset"])
def test_match_all(q):
    assert parse(q) == All()


def test_no_fq_and_empty_fq_entries_are_all():
    assert parse_query(None) == All()
    assert parse("*:*", "", "  ", '""') == All()


# -- free text ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("q", "expected"), [
    ("wind", words("wind")),
    ("Windkraft", words("Windkraft")),
    ('"a b"', words("a", "b", phrase=True)),
    ('"Radwege im Landkreis"', words("Radwege", "im", "Landkreis", phrase=True)),
    ("wind*", words("wind", prefix=True)),
    ("foo-bar", words("foo", "bar")),  # '-' inside a term is part of it; words split on it
    ("foo_bar.baz", words("foo", "bar", "baz")),
    ("wind park", And((words("wind"), words("park")))),
    ("Müller-Lüdenscheid", words("Müller", "Lüdenscheid")),
    ("Straße", words("Straße")),
    ("text:wind", words("wind")),
    ("text:(wind park)", And((words("wind"), words("park")))),
    ("ÄRGER*", words("ÄRGER", prefix=True)),
    ("foo-ba*", words("foo", "ba", prefix=True)),
    ("foo\\*", words("foo")),  # an escaped star is a literal, not a prefix
    ("a&&b", words("a", "b")),  # operators only as whole words, as in Lucene
    ("and or not", And((words("and"), words("or"), words("not")))),  # lower case: plain words
    ('"wind" park', And((words("wind", phrase=True), words("park")))),
])
def test_free_text(q, expected):
    assert parse(q) == expected


# -- fields ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("q", "expected"), [
    ("title:wind", words("wind", field="title")),
    ('title:"wind park"', words("wind", "park", field="title", phrase=True)),
    ("title:wind*", words("wind", field="title", prefix=True)),
    ("notes:Radweg", words("Radweg", field="description")),
    ("res_name:Tabelle", words("Tabelle", field="resources")),
    ("res_description:csv", words("csv", field="resources")),
    ('res_url:"https://example.org/a.csv"',
     words("https", "example", "org", "a", "csv", field="resources", phrase=True)),
    ("name:radwege", Match("name", "radwege")),
    ("name:radwege-2024", Match("name", "radwege-2024")),
    ("name:foo\\-bar", Match("name", "foo-bar")),
    ("name:a\\:b", Match("name", "a:b")),
    ("name:a\\ b", Match("name", "a b")),
    ("name:wind*", Match("name", "wind", prefix=True)),
    ("name:foo-*", Match("name", "foo-", prefix=True)),
    ("id:756d6426-d52d-492a-a263-599ad1caa123",
     Match("id", "756d6426-d52d-492a-a263-599ad1caa123")),
    ("tags:economy", Match("keyword", "economy")),
    ('tags:"Open Data"', Match("keyword", "Open Data")),
    ("groups:umwelt", Match("theme", "umwelt")),
    ("organization:sozialamt", Match("organization", "sozialamt")),
    ("res_format:CSV", Match("format", "CSV")),
    ("license_id:dl-de-by-2.0", Match("license", "dl-de-by-2.0")),
    ("state:active", Match("state", "active")),
    ("tags:Größe", Match("keyword", "Größe")),
    ("title: wind", words("wind", field="title")),  # Lucene allows space after the colon
])
def test_field_mapping(q, expected):
    assert parse(q) == expected


@pytest.mark.parametrize(("q", "expected"), [
    ("tags:*", Exists("keyword")),
    ("name:*", Exists("name")),
    ("id:*", Exists("id")),
    ("groups:*", Exists("theme")),
    ("organization:*", Exists("organization")),
    ("res_format:*", Exists("format")),
    ("license_id:*", Exists("license")),
    ("state:*", Exists("state")),
    ("metadata_modified:*", Range("changed", None, None)),
    ("metadata_created:*", Range("created", None, None)),
    ("title_string:*", Range("title", None, None)),
    ("capacity:*", All()),
    ("type:*", All()),
    ("-tags:*", Not(Exists("keyword"))),
])
def test_field_has_a_value(q, expected):
    assert parse(q) == expected


@pytest.mark.parametrize(("q", "expected"), [
    ("capacity:public", PUBLIC),
    ("+capacity:public", PUBLIC),
    ("capacity:private", Not(PUBLIC)),
    ("-capacity:private", PUBLIC),
    ("capacity:draft", NOTHING),
    ("capacity:Public", NOTHING),  # Solr string fields are case-sensitive
    ("dataset_type:dataset", All()),
    ("dataset_type:harvest", NOTHING),
    ("-dataset_type:harvest", All()),
    ("type:dataset", All()),
    ("type:showcase", NOTHING),
    ('site_id:"default"', All()),
    ("site_id:anything", All()),
    ("-site_id:anything", NOTHING),
    ("capacity:(public OR private)", Or((PUBLIC, Not(PUBLIC)))),
])
def test_single_site_constants(q, expected):
    assert parse(q) == expected


@pytest.mark.parametrize(("q", "expected"), [
    ("tags:(a OR b)", Or((Match("keyword", "a"), Match("keyword", "b")))),
    ("tags:(a b)", And((Match("keyword", "a"), Match("keyword", "b")))),
    ("tags:(a AND -b)", And((Match("keyword", "a"), Not(Match("keyword", "b"))))),
    ("title:(wind OR \"solar park\")",
     Or((words("wind", field="title"), words("solar", "park", field="title", phrase=True)))),
    ("tags:((a OR b) c)",
     And((Or((Match("keyword", "a"), Match("keyword", "b"))), Match("keyword", "c")))),
    ("title:(a name:b)", And((words("a", field="title"), Match("name", "b")))),  # inner wins
    ("tags:(x*)", Match("keyword", "x", prefix=True)),
    ("name:([a TO c] OR z)", Or((Range("name", "a", "c"), Match("name", "z")))),
])
def test_field_groups_apply_the_field_to_each_term(q, expected):
    assert parse(q) == expected


def test_every_searchable_field_compiles_to_catalog_fields():
    def leaves(expr: Expr) -> list[Expr]:
        if isinstance(expr, And | Or):
            return [leaf for item in expr.items for leaf in leaves(item)]
        return leaves(expr.item) if isinstance(expr, Not) else [expr]

    found = []
    for field in SEARCHABLE:
        for value in ("x", "*", "[a TO b]", "2024-05-01T09:00:00Z", "[NOW-1DAY TO NOW]"):
            with contextlib.suppress(SearchQueryError):
                found += leaves(parse(f"{field}:{value}"))
    assert {type(leaf) for leaf in found} == {All, Match, Exists, Text, Range}
    for leaf in found:
        if isinstance(leaf, Match | Exists):
            assert leaf.field in KEYWORD_FIELDS
        elif isinstance(leaf, Text):
            assert leaf.field is None or leaf.field in TEXT_FIELDS
        elif isinstance(leaf, Range):
            assert leaf.field in RANGE_FIELDS


# -- operators and precedence ---------------------------------------------------------------------

A, B, C, D = (words(w) for w in "abcd")


@pytest.mark.parametrize(("q", "expected"), [
    ("a b", And((A, B))),
    ("a AND b", And((A, B))),
    ("a && b", And((A, B))),
    ("a OR b", Or((A, B))),
    ("a || b", Or((A, B))),
    ("NOT a", Not(A)),
    ("!a", Not(A)),
    ("-a", Not(A)),
    ("+a", A),
    ("a -b", And((A, Not(B)))),
    ("a NOT b", And((A, Not(B)))),
    ("a AND NOT b", And((A, Not(B)))),
    ("+a -b", And((A, Not(B)))),
    # NOT > AND > OR
    ("a OR b AND c", Or((A, And((B, C))))),
    ("a AND b OR c", Or((And((A, B)), C))),
    ("a OR b c", Or((A, And((B, C))))),  # implicit AND binds like AND
    ("a b OR c d", Or((And((A, B)), And((C, D))))),
    ("NOT a OR b", Or((Not(A), B))),
    ("NOT a AND b", And((Not(A), B))),
    ("a OR NOT b", Or((A, Not(B)))),
    ("a OR b OR c", Or((A, B, C))),
    ("(a OR b) c", And((Or((A, B)), C))),
    ("a AND (b OR c)", And((A, Or((B, C))))),
    ("-(a OR b)", Not(Or((A, B)))),
    ("-(a b)", Not(And((A, B)))),
    ("((a))", A),
    ("(a OR (b AND (c OR d)))", Or((A, And((B, Or((C, D))))))),
    ("a\tOR\nb", Or((A, B))),
    ("(a)OR(b)", Or((A, B))),
    ("(a)AND(b)", And((A, B))),
])
def test_operators_and_precedence(q, expected):
    assert parse(q) == expected


@pytest.mark.parametrize(("q", "expected"), [
    ("a (b c)", And((A, B, C))),  # nested Ands flatten
    ("(a b) (c d)", And((A, B, C, D))),
    ("a OR (b OR c)", Or((A, B, C))),
    ("-(-a)", A),  # double negation
    ("*:* a", A),  # All drops out of an And
    ("*:* OR a", All()),  # and absorbs an Or
    ("dataset_type:harvest OR a", A),
    ("dataset_type:harvest a", NOTHING),
    ("(a)", A),
    ("-dataset_type:harvest -organization:x", Not(Match("organization", "x"))),
])
def test_simplification(q, expected):
    assert parse(q) == expected


# -- ranges ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("q", "expected"), [
    ("name:[a TO m]", Range("name", "a", "m")),
    ("name:{a TO m}", Range("name", "a", "m", False, False)),
    ("name:[a TO m}", Range("name", "a", "m", True, False)),
    ("name:{a TO m]", Range("name", "a", "m", False, True)),
    ("name:[a TO *]", Range("name", "a", None)),
    ("name:{* TO m}", Range("name", None, "m", True, False)),  # open ends are normalised
    ("name:[* TO *]", Range("name", None, None)),
    ("name:{* TO *}", Range("name", None, None)),
    ('name:["a b" TO "c d"]', Range("name", "a b", "c d")),
    ('name:["*" TO \\*]', Range("name", "*", "*")),  # quoted or escaped: a literal star
    ("name:[  a   TO   m  ]", Range("name", "a", "m")),
    ("name:[a\\]b TO m]", Range("name", "a]b", "m")),
    ("title_string:[A TO N}", Range("title", "A", "N", True, False)),
    ("-name:[a TO m]", Not(Range("name", "a", "m"))),
])
def test_ranges(q, expected):
    assert parse(q) == expected


# -- time values ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("2024-05-01T09:00:00Z", "2024-05-01T09:00:00.000000"),
    ("2024-05-01T09:00:00", "2024-05-01T09:00:00.000000"),
    ("2024-05-01T09:00Z", "2024-05-01T09:00:00.000000"),
    ("2024-05-01T09:00:00.123Z", "2024-05-01T09:00:00.123000"),
    ("2024-05-01T09:00:00.1Z", "2024-05-01T09:00:00.100000"),
    ("2024-05-01T09:00:00.123456Z", "2024-05-01T09:00:00.123456"),
    ("2024-05-01T09:00:00.123456", "2024-05-01T09:00:00.123456"),
    ("2024-05-01T09:00:00+02:00", "2024-05-01T07:00:00.000000"),
    ("2024-05-01T01:00:00+0200", "2024-04-30T23:00:00.000000"),
    ("2024-05-01T09:00:00-05:30", "2024-05-01T14:30:00.000000"),
    ("2024-05-01T09:00:00.5+01", "2024-05-01T08:00:00.500000"),
    ("2024-05-01", "2024-05-01T00:00:00.000000"),
    ('"2024-05-01 09:00:00"', "2024-05-01T09:00:00.000000"),
    ("NOW", NOW_ISO),
    ("NOW-1DAY", "2024-03-30T12:34:56.789012"),
    ("NOW-7DAYS", "2024-03-24T12:34:56.789012"),
    ("NOW+1DAY", "2024-04-01T12:34:56.789012"),
    ("NOW/DAY", "2024-03-31T00:00:00.000000"),
    ("NOW-1MONTH/DAY", "2024-02-29T00:00:00.000000"),  # clamped to the month's last day
    ("NOW-1MONTHS", "2024-02-29T12:34:56.789012"),
    ("NOW-13MONTHS", "2023-02-28T12:34:56.789012"),
    ("NOW+9MONTHS", "2024-12-31T12:34:56.789012"),
    ("NOW-1YEAR", "2023-03-31T12:34:56.789012"),
    ("NOW-2YEARS/YEAR", "2022-01-01T00:00:00.000000"),
    ("NOW/MONTH", "2024-03-01T00:00:00.000000"),
    ("NOW/HOUR", "2024-03-31T12:00:00.000000"),
    ("NOW/MINUTE", "2024-03-31T12:34:00.000000"),
    ("NOW/SECOND", "2024-03-31T12:34:56.000000"),
    ("NOW+2HOURS", "2024-03-31T14:34:56.789012"),
    ("NOW-30MINUTES", "2024-03-31T12:04:56.789012"),
    ("NOW-10SECONDS", "2024-03-31T12:34:46.789012"),
    ("NOW/DAY+1DAY", "2024-04-01T00:00:00.000000"),
    ("NOW/DAY-1HOUR", "2024-03-30T23:00:00.000000"),
    ("2024-02-29T00:00:00Z+1YEAR", "2025-02-28T00:00:00.000000"),
    ("2024-05-01T09:30:00Z/DAY", "2024-05-01T00:00:00.000000"),
])
def test_time_values_are_normalised_to_naive_utc_microseconds(value, expected):
    assert parse(f"metadata_modified:[{value} TO *]") == changed(expected, None)
    assert parse(f"metadata_created:[* TO {value}]") == Range("created", None, expected)


@pytest.mark.parametrize(("q", "expected"), [
    ("metadata_modified:2024-05-01T09:00:00Z",
     changed("2024-05-01T09:00:00.000000", "2024-05-01T09:00:00.000000")),
    ("metadata_modified:2024-05-01T09:00:00.123456Z",
     changed("2024-05-01T09:00:00.123456", "2024-05-01T09:00:00.123456")),
    ("metadata_modified:2024-05-01T09:00:00+02:00",
     changed("2024-05-01T07:00:00.000000", "2024-05-01T07:00:00.000000")),
    ('metadata_created:"2024-05-01T09:00:00Z"',
     Range("created", "2024-05-01T09:00:00.000000", "2024-05-01T09:00:00.000000")),
    ("metadata_modified:NOW/DAY", changed("2024-03-31T00:00:00.000000",
                                          "2024-03-31T00:00:00.000000")),
    ("metadata_modified:[2024-05-01 TO 2024-05-01+1DAY}",
     changed("2024-05-01T00:00:00.000000", "2024-05-02T00:00:00.000000", True, False)),
    ("metadata_modified:{NOW-1DAY TO NOW]", changed("2024-03-30T12:34:56.789012", NOW_ISO,
                                                    False, True)),
])
def test_time_terms_and_ranges(q, expected):
    assert parse(q) == expected


def test_now_defaults_to_the_current_time_and_accepts_aware_datetimes():
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
    low = parse_query("metadata_modified:[NOW TO *]").low
    after = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
    assert before <= low <= after
    berlin = dt.datetime(2024, 5, 1, 11, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert parse_query("metadata_modified:[NOW TO *]", now=berlin) == changed(
        "2024-05-01T09:00:00.000000", None)


# -- real client queries (ckan-dcat.md §1.5, §1.8) ------------------------------------------------

@pytest.mark.parametrize(("q", "fq", "expected"), [
    # CKANHarvester: (gather_started - 1h).isoformat() + 'Z'
    ("*:*", ["metadata_modified:[2024-05-01T09:00:00.123456Z TO *]"],
     changed("2024-05-01T09:00:00.123456", None)),
    # ckanext-dcat's CKAN harvester
    ("*:*", ["metadata_modified:[2015-07-24T00:00:00Z TO NOW]"],
     changed("2015-07-24T00:00:00.000000", NOW_ISO)),
    ("", ["-dataset_type:harvest"], All()),
    # ckanext-harvest's organisation include / exclude filters
    (None, ["organization:a OR organization:b"],
     Or((Match("organization", "a"), Match("organization", "b")))),
    (None, ["-organization:x"], Not(Match("organization", "x"))),
    (None, ["+capacity:public"], PUBLIC),
    ("groups:x", [], Match("theme", "x")),
    ("tags:economy", [], Match("keyword", "economy")),
    ("res_format:CSV", [], Match("format", "CSV")),
    (None, ["tags:economy"], Match("keyword", "economy")),  # docs: package_search?fq=tags:economy
    # fq is a space-joined list of clauses: AND (q.op=AND); fq_list entries add more
    ("wind", ['tags:economy res_format:CSV +capacity:public', "organization:sozialamt"],
     And((words("wind"), Match("keyword", "economy"), Match("format", "CSV"), PUBLIC,
          Match("organization", "sozialamt")))),
    ("*:*", ["+dataset_type:dataset +state:active +capacity:public", '+site_id:"default"'],
     And((Match("state", "active"), PUBLIC))),
    ("", ['organization:sozialamt metadata_modified:[2024-05-01T09:00:00.123456Z TO *]'],
     And((Match("organization", "sozialamt"), changed("2024-05-01T09:00:00.123456", None)))),
    ("*:*", ["-organization:a -organization:b"],
     And((Not(Match("organization", "a")), Not(Match("organization", "b"))))),
])
def test_real_client_queries(q, fq, expected):
    assert parse_query(q, fq, now=NOW) == expected


def test_q_and_every_fq_are_anded():
    assert parse("a OR b", "c", "d") == And((Or((A, B)), C, D))


def test_a_single_fq_string_is_one_clause_not_characters():
    assert parse_query("*:*", "tags:economy") == Match("keyword", "economy")


# -- rejections -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("q", "message", "offending"), [
    # local params, nested queries
    ("{!field f=spatial_geom}Intersects(ENVELOPE(1,2,3,4))", "local parameters",
     "{!field f=spatial_geom}"),
    ("{!lucene}wind", "local parameters", "{!lucene}"),
    ("wind {!dismax qf=title}x", "local parameters", "{!dismax qf=title}"),
    ('_query_:"{!dismax}wind"', "nested queries", "_query_:"),
    # wildcards other than a trailing '*'
    ("wind?", "wildcard '?'", "wind?"),
    ("tags:w?nd", "wildcard '?'", "w?nd"),
    ("*wind", "only supported at the end", "*wind"),
    ("fo*o", "only supported at the end", "fo*o"),
    ("name:*foo", "only supported at the end", "name:*foo"),
    ("wind**", "only supported at the end", "wind**"),
    ("foo-*", "letter or digit before '*'", "foo-*"),
    # fuzzy, proximity, boosts, regexes
    ("wind~", "fuzzy", "wind~"),
    ("wind~2", "fuzzy", "wind~2"),
    ('"wind park"~3', "proximity", "~3"),
    ("wind^2", "boosts", "wind^2"),
    ('"wind park"^2', "boosts", "^2"),
    ("(a b)^2", "boosts", "^2"),
    ("/wi.d/", "regular expressions", "/wi.d/"),
    ("name:/wi.d/", "regular expressions", "name:/wi.d/"),
    ("res_url:http\\://x.org/a", "regular expressions", "res_url:http\\://x.org/a"),
    # balance
    ("(a", "unbalanced '('", "("),
    ("((a) OR b", "unbalanced '('", "("),
    ("a)", "unbalanced ')'", ")"),
    ("a OR b))", "unbalanced ')'", ")"),
    ("()", "empty parentheses", ")"),
    ('"abc', "unbalanced '\"'", '"abc'),
    ('title:"abc', "unbalanced '\"'", '"abc'),
    ("name:[a TO b", "unbalanced range", "[a TO b"),
    ("name:[a TO b)", "unbalanced range", "[a TO b)"),
    ("name:[a b]", "'TO'", "[a b"),
    ("name:[a to b]", "'TO'", "[a to"),
    ("name:[a TO]", "bound is missing", "[a TO]"),
    ("name:[ TO b]", "'TO'", "[ TO b"),
    ("a]", "unbalanced ']'", "]"),
    ("a }", "unbalanced '}'", "}"),
    # dangling operators
    ("AND", "'AND' must be preceded by a term", "AND"),
    ("OR a", "'OR' must be preceded by a term", "OR"),
    ("(AND a)", "'AND' must be preceded by a term", "AND"),
    ("a OR", "'OR' must be followed by a term", "OR"),
    ("a AND", "'AND' must be followed by a term", "AND"),
    ("a ||", "'||' must be followed by a term", "||"),
    ("a AND OR b", "'AND' must be followed by a term", "AND OR"),
    ("NOT", "'NOT' must be followed by a term", "NOT"),
    ("a NOT", "'NOT' must be followed by a term", "NOT"),
    ("NOT NOT a", "'NOT' must be followed by a term", "NOT NOT"),
    ("a AND (b OR)", "'OR' must be followed by a term", "OR)"),
    ("-", "'-' must be directly followed by a term", "-"),
    ("a - b", "'-' must be directly followed by a term", "-"),
    ("a + b", "'+' must be directly followed by a term", "+"),
    ("--a", "'-' must be followed by a term", "--"),
    ("+-a", "'+' must be followed by a term", "+-"),
    ("(-)", "'-' must be followed by a term", "-)"),
    # fields and values
    ("owner_org:abc", "field 'owner_org' is not searchable", "owner_org:"),
    ("extras_spatial:x", "field 'extras_spatial' is not searchable", "extras_spatial:"),
    ("vocab_Topics:education", "field 'vocab_Topics' is not searchable", "vocab_Topics:"),
    ("author:Meier", "field 'author' is not searchable", "author:"),
    ("Title:wind", "field 'Title' is not searchable", "Title:"),
    ("owner_org:(a OR b)", "field 'owner_org' is not searchable", "owner_org:"),
    ("http://example.org", "field 'http' is not searchable", "http:"),
    (":wind", "missing field name", ":wind"),
    ("title:", "field 'title' has no value", "title:"),
    ("title: AND a", "field 'title' has no value", "title:"),
    ("title: -a", "field 'title' has no value", "title:"),
    ("title:name:wind", "unescaped ':'", "title:name:wind"),
    ("tags:a:b", "unescaped ':'", "tags:a:b"),
    ('title:""', "empty value", 'title:""'),
    ('tags:" "', "empty value", 'tags:" "'),
    ('"" wind', "empty value", '""'),
    ("title:---", "no letters or digits", "title:---"),
    ("&", "no letters or digits", "&"),
    ('"--"', "no letters or digits", '"--"'),
    ("🙂", "no letters or digits", "🙂"),
    ("*:wind", "'*:' only accepts '*'", "*:wind"),
    ("title:*", "'title:*' is not supported on a text field", "title:*"),
    ("text:*", "'text:*' is not supported on a text field", "text:*"),
    ("title_string:Radwege", "title_string supports only ranges", "title_string:Radwege"),
    ("capacity:pub*", "prefix search is not supported on 'capacity'", "capacity:pub*"),
    ("metadata_modified:2024*", "prefix search is not supported", "metadata_modified:2024*"),
    ("a!b", "'!' inside a term", "a!b"),
    ("wind\\", "escapes nothing", "\\"),
    ("wind\\u00e4", "unicode escapes", "\\u00e4"),
    # ranges on fields without an order
    ("tags:[a TO b]", "field 'tags' cannot be searched by range", "tags:[a TO b]"),
    ("title:[a TO b]", "field 'title' cannot be searched by range", "title:[a TO b]"),
    ("[a TO b]", "field 'text' cannot be searched by range", "[a TO b]"),
    ("capacity:[a TO b]", "field 'capacity' cannot be searched by range", "capacity:[a TO b]"),
    ("organization:{* TO *}", "cannot be searched by range", "organization:{* TO *}"),
    # time values
    ("metadata_modified:[yesterday TO *]", "bad timestamp 'yesterday'", "metadata_modified:["),
    ("metadata_modified:[2024-13-01T00:00:00Z TO *]", "bad timestamp '2024-13-01T00:00:00Z'",
     "metadata_modified:[2024-13-01"),
    ("metadata_modified:[2024-02-30 TO *]", "bad timestamp '2024-02-30'", "2024-02-30"),
    ("metadata_modified:[2024-05-01T25:00:00Z TO *]", "bad timestamp", "2024-05-01T25"),
    ("metadata_modified:[2024-05-01T09:00:00.1234567Z TO *]", "bad timestamp", ".1234567Z"),
    ("metadata_modified:[2024-05-01T09:00:00+25:00 TO *]", "bad timestamp", "+25:00"),
    ("metadata_modified:[2024-05-01T09:00:00+02:75 TO *]", "bad timestamp", "+02:75"),
    ("metadata_modified:[24-05-01 TO *]", "bad timestamp '24-05-01'", "24-05-01"),
    ("metadata_modified:[now TO *]", "bad timestamp 'now'", "now"),
    ("metadata_modified:[NOW-1WEEK TO *]", "unknown date math unit 'WEEK'", "NOW-1WEEK"),
    ("metadata_modified:[NOW-1DAYSS TO *]", "unknown date math unit 'DAYSS'", "NOW-1DAYSS"),
    ("metadata_modified:[NOW-1 TO *]", "bad timestamp 'NOW-1'", "NOW-1"),
    ("metadata_modified:[NOW/2DAY TO *]", "bad timestamp 'NOW/2DAY'", "NOW/2DAY"),
    ("metadata_modified:[NOW+999999999YEARS TO *]", "bad timestamp", "NOW+999999999YEARS"),
    ("metadata_modified:[NOW+99999999999DAYS TO *]", "bad timestamp", "NOW+99999999999DAYS"),
    ("metadata_modified:[9999-12-31T23:00:00-05:00 TO *]", "bad timestamp", "9999-12-31"),
    ("metadata_modified:[0001-01-01T00:00:00Z-1DAY TO *]", "bad timestamp", "0001-01-01"),
    ("metadata_modified:2024-05-01", "a date alone", "metadata_modified:2024-05-01"),
    ("metadata_created:yesterday", "bad timestamp 'yesterday'", "metadata_created:yesterday"),
])
def test_rejections_name_the_offending_text(q, message, offending):
    error = rejected(q)
    assert message in error
    assert repr(offending)[1:-1] in error


def test_unknown_field_message_lists_the_searchable_fields():
    error = rejected("extras_foo:bar")
    for field in ("tags", "organization", "res_format", "metadata_modified", "title_string"):
        assert field in error


def test_errors_give_the_column_and_the_parameter():
    assert "(q at column 6: 'wind?')" in rejected("park wind?")
    assert "(fq[1] at column 1: 'owner_org:')" in rejected("*:*", "tags:x", "owner_org:y")
    assert "fq[0]" in rejected("", "(a")
    assert "unbalanced '(' (no matching ')') (q at column 7: '(')" in rejected("a AND (")


def test_errors_are_value_errors():
    assert issubclass(SearchQueryError, ValueError)


# -- hostile input --------------------------------------------------------------------------------

def test_nesting_up_to_50_levels_parses_and_deeper_is_rejected():
    assert parse("(" * 50 + "a" + ")" * 50) == A
    assert parse("tags:" + "(" * 49 + "a" + ")" * 49) == Match("keyword", "a")
    assert "nested deeper than 50" in rejected("(" * 51 + "a" + ")" * 51)
    assert "nested deeper than 50" in rejected("-(" * 51 + "a" + ")" * 51)


# Parse time of these inputs (each ≤ 50 ms) is measured in bench/solr.py (`python -m bench
# solr-parse`), not here: a unit test asserts what the parser answers, never how fast.

@pytest.mark.parametrize("q", [
    "(" * 10_000, ")" * 10_000, "-(" * 5_000, "(a " * 3_333, '"' * 10_000, "[" * 10_000,
    "{" * 10_000, "-" * 10_000, "\\" * 10_000, "NOT " * 2_500, "a:" * 5_000, "*" * 10_000,
    "AND " * 2_500, "((a OR b) " * 1_000,
])
def test_hostile_input_is_rejected_with_a_position(q):
    error = rejected(q)
    assert "column" in error


@pytest.mark.parametrize(("q", "expected"), [
    ("wind " * 2_000, And((words("wind"),) * 2_000)),
    ("tags:economy OR " * 624 + "tags:x",
     Or((Match("keyword", "economy"),) * 624 + (Match("keyword", "x"),))),
    ("(a OR b) " * 1_111, And((Or((words("a"), words("b"))),) * 1_111)),
    ("-organization:x " * 588, And((Not(Match("organization", "x")),) * 588)),
    ("metadata_modified:[2024-05-01T09:00:00.123456Z TO NOW/DAY] " * 166,
     And((changed("2024-05-01T09:00:00.123456", "2024-03-31T00:00:00.000000"),) * 166)),
    ('"' + "wort " * 1_999 + '"', words(*("wort",) * 1_999, phrase=True)),
    ("ä" * 10_000, words("ä" * 10_000)),
])
def test_10k_character_queries_parse(q, expected):
    assert len(q) <= 10_000
    assert parse(q) == expected


def test_length_limit():
    assert parse("a" * 10_000) == words("a" * 10_000)
    error = rejected("a" * 10_001)
    assert "10001 characters" in error and "10000" in error
    assert "fq[0] is 20000 characters" in rejected("", "b" * 20_000)


@pytest.mark.parametrize(("q", "char"), [
    ("wind\x00", "U+0000"), ("\x1b[31mwind", "U+001B"), ("wi\x7fnd", "U+007F"),
    ("tags:a\x85", "U+0085"), ("a\x0bb", "U+000B"), ("wind\ud800", "U+D800"),
])
def test_control_characters_are_rejected(q, char):
    error = rejected(q)
    assert f"control character {char}" in error
    assert "column" in error


@pytest.mark.parametrize(("q", "expected"), [
    ("a\u00a0b", And((A, B))),  # no-break space separates like a space
    ("a\u3000b", And((A, B))),  # ideographic space too
    ("東京 データ", And((words("東京"), words("データ")))),
    ("title:Ελλάδα", words("Ελλάδα", field="title")),
    ("tags:Größe*", Match("keyword", "Größe", prefix=True)),
    ('"Ärger über Öl"', words("Ärger", "über", "Öl", phrase=True)),
    ("wind\u200bpark", words("wind", "park")),  # zero-width space is not a letter
    ("organization:landratsamt-oberspreewald-lausitz",
     Match("organization", "landratsamt-oberspreewald-lausitz")),
])
def test_unicode(q, expected):
    assert parse(q) == expected


def test_random_garbage_parses_or_raises_search_query_errors_only():
    pieces = ["a", "wind", "tags:", "title:", "metadata_modified:", "name:", "*", "?", ":",
              "(", ")", '"', "[", "]", "{", "}", " TO ", "AND", "OR", "NOT", "&&", "||", "-",
              "+", "!", "\\", "~", "^", "/", "NOW", "-1DAY", "/DAY", "2024-05-01T09:00:00Z",
              " ", " ", " ", "ä", "{!", "_query_:", "\t"]
    rng = random.Random(20240501)
    for _ in range(3_000):
        q = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        try:
            result = parse(q)
        except SearchQueryError:
            continue
        assert isinstance(result, (All, And, Or, Not, Match, Exists, Range, Text)), q
