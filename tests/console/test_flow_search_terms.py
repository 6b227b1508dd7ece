"""The words a flow is found by and the words of a search (store.flow_search), without a database."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from store.flow_search import (
    MAX_QUERY_WORDS,
    FlowFilter,
    _Narrowed,
    _starting_with,
    flow_terms,
    id_terms,
    name_terms,
    query_words,
)
from store.schema import SEARCH_TERM_LENGTH, flows


def test_a_name_gives_each_word_as_written_and_its_runs_of_letters_and_digits() -> None:
    assert name_terms("José Müller-Lüdenscheidt") == {"jose", "muller-ludenscheidt", "muller", "ludenscheidt"}
    assert name_terms("O'Brien, Seán") == {"o'brien", "o", "brien", "sean"}
    assert name_terms("STRASSE Straße İzmir") == {"strasse", "izmir"}
    assert name_terms("<img src=x onerror=alert(1)>") == {
        "img", "src=x", "src", "x", "onerror=alert(1", "onerror", "alert", "1"}
    assert name_terms("  -- ") == set()
    assert name_terms("東京 Travel") == {"東京", "travel"}
    assert name_terms("a" * 100) == {"a" * SEARCH_TERM_LENGTH}


def test_an_id_gives_itself_and_what_follows_its_prefix() -> None:
    assert id_terms("CAN-EV4R8M76") == {"can-ev4r8m76", "ev4r8m76"}
    assert id_terms("ptn_4bac") == {"ptn_4bac"}
    assert flow_terms("SR-AAAA1111", "RES-XTD2HPQXAS", "PRD-9XOV690Q41", "Acme Travel", ["Ada Lovelace"]) == {
        "sr-aaaa1111", "aaaa1111", "res-xtd2hpqxas", "xtd2hpqxas", "prd-9xov690q41", "9xov690q41",
        "acme", "travel", "ada", "lovelace"}
    assert flow_terms("SR-AAAA1111", "RES-1", "PRD-1", None, []) == {"sr-aaaa1111", "aaaa1111", "res-1", "1", "prd-1"}


def test_a_search_is_its_words_normalised_as_terms_are() -> None:
    assert query_words("  Ada,LOVELACE; ada  ") == ("ada", "lovelace")
    assert query_words("CAN-EV4R") == ("can-ev4r",)
    assert query_words("MÜLLER-lüd") == ("muller-lud",)
    assert query_words(" ,;- ") == ()
    assert len(query_words(" ".join("abcdefgh"))) == MAX_QUERY_WORDS
    with pytest.raises(ValueError):
        query_words(" ".join("abcdefghi"))


alnum_ending = st.text(min_size=1, max_size=6).map(lambda text: text + "a")


@given(word=alnum_ending, term=st.text(max_size=8))
def test_the_range_of_a_word_holds_exactly_the_terms_it_begins(word: str, term: str) -> None:
    """As the database compares terms (byte by byte, which for UTF-8 is by code point, as Python does)."""
    bounds = _starting_with(word).clauses
    low, high = (clause.right.value for clause in bounds)
    assert (low <= term < high) == term.startswith(word)
    assert (low <= word + term < high)


def test_statements_that_differ_only_by_the_column_kept_off_an_index_are_two_statements() -> None:
    """SQLAlchemy caches compiled statements by their shape: ``+status = ?`` and ``+partner_id = ?`` must not share one."""

    def key(where: FlowFilter) -> object:
        return sa.select(flows.c.code).where(*_Narrowed(where, [], few=False).waiting())._generate_cache_key()

    assert key(FlowFilter(status="awaiting_agent_quote")) != key(FlowFilter(partner_id="awaiting_agent_quote"))
    assert key(FlowFilter(status="a")) == key(FlowFilter(status="b"))
