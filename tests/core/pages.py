"""What a rendered page must not carry under the Content-Security-Policy."""

from html.parser import HTMLParser


class _InlineScripts(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names and dict(attrs).get("type") != "application/json":
            self.found.append(f"inline <script> at line {self.getpos()[0]}")
        handlers = sorted(name for name in names if name.startswith("on"))
        if handlers:
            self.found.append(f"<{tag} {' '.join(handlers)}> at line {self.getpos()[0]}")
        if any(value and value.strip().lower().startswith("javascript:") for _, value in attrs):
            self.found.append(f"javascript: URL in <{tag}> at line {self.getpos()[0]}")


def inline_scripts(html):
    parser = _InlineScripts()
    parser.feed(html)
    return parser.found


def page_problems(response):
    """An HTML answer needs the CSP header and no inline script or event handler."""
    if not response.get("Content-Type", "").startswith("text/html"):
        return []
    problems = [] if response.get("Content-Security-Policy") else ["no Content-Security-Policy"]
    body = response.content.decode(errors="replace") if response.status_code == 200 else ""
    return problems + inline_scripts(body)
