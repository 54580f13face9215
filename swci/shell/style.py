"""Colours of the SWCI prompt."""

from prompt_toolkit.styles import Style

SWCI_STYLE = Style.from_dict({
    "prompt": "ansicyan bold",
    "keyword": "ansiblue bold",
    "name": "",
    "string": "ansigreen",
    "number": "ansimagenta",
    "text": "ansigreen",
    "comment": "ansibrightblack italic",
    "error": "ansired underline",
    "bottom-toolbar": "bg:#222222 #aaaaaa",
})
