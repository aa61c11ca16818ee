"""mkdocs hook: the docstrings' Sphinx roles (``:func:`~mrs_tf.quest.fit```) shown as code (``fit``), not as text."""
import re

_ROLE = re.compile(r":(?:mod|func|class|meth|data|attr|exc):<code>(~?)([^<]+)</code>")


def _code(match: re.Match) -> str:
    short, target = match.groups()
    return f"<code>{target.rsplit('.', 1)[-1] if short else target}</code>"


def on_page_content(html: str, **kwargs) -> str:
    return _ROLE.sub(_code, html)
