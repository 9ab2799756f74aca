"""The inbox's ``softwrap`` filter: long tokens get line-break offers only after the
characters that separate their parts; everything is escaped."""

from __future__ import annotations

from decisionops.agent.api._format import softwrap


def test_long_tokens_break_only_after_separators_and_everything_is_escaped() -> None:
    assert str(softwrap("enterprise_strategic_accounts")) == (
        "enterprise_<wbr>strategic_<wbr>accounts")
    assert str(softwrap("MSA-2026/ACME")) == "MSA-<wbr>2026/<wbr>ACME"
    assert str(softwrap("mei.lin@northwind.example")) == (
        "mei.<wbr>lin@<wbr>northwind.<wbr>example")
    assert str(softwrap("short_one and x")) == "short_one and x"  # short: left alone
    assert str(softwrap("trailing_separator_")) == "trailing_<wbr>separator_"
    assert str(softwrap("<script>alert('x_y_z')</script>")) == (
        "&lt;script&gt;alert(&#39;x_<wbr>y_<wbr>z&#39;)&lt;/<wbr>script&gt;")
    assert str(softwrap(None)) == "" and str(softwrap(12345.5)) == "12345.5"
