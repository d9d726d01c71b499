"""Print docs/client-requirements.md from the client catalogue data."""

from ciba_harness.rp._catalogue import render_markdown

if __name__ == "__main__":
    print(render_markdown(), end="")
