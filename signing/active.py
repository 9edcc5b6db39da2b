"""Active content a department's PDF may not carry into a sealed licence (the rule is in docs/signing.md).

A sealed licence is a document to read, not a program: scripts, actions that run or send something,
embedded files and multimedia could show one thing and do another, or change what a viewer displays
after the seal was checked. Links to web pages (``/URI``) and in-document navigation (``/GoTo``) stay.
"""

from __future__ import annotations

from pyhanko.pdf_utils import generic

__all__ = ["active_content"]

#: action type -> what the answer calls it
_ACTIONS = {
    "/JavaScript": "JavaScript", "/Launch": "launch actions (run a program)", "/SubmitForm": "submit-form actions",
    "/ImportData": "import-data actions", "/GoToR": "actions opening other files", "/GoToE": "actions opening embedded files",
    "/Rendition": "multimedia (rendition actions)", "/Movie": "multimedia (movie actions)", "/Sound": "multimedia (sound actions)",
    "/Hide": "hide actions", "/SetOCGState": "actions changing visible layers", "/RichMediaExecute": "rich media (Flash/3D)",
}
#: annotation subtype -> what the answer calls it
_ANNOTATIONS = {
    "/RichMedia": "rich media (Flash/3D)", "/Movie": "multimedia (movie annotations)", "/Sound": "multimedia (sound annotations)",
    "/Screen": "multimedia (screen annotations)", "/3D": "3D content", "/FileAttachment": "embedded files (attachments)",
}


_MAX_DEPTH = 32


def active_content(obj: generic.PdfObject) -> set[str]:
    """What active content one resolved object holds, its direct (not indirect) dictionaries and arrays included."""
    found: set[str] = set()
    stack: list[tuple[generic.PdfObject, int]] = [(obj, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > _MAX_DEPTH:
            found.add("objects nested too deeply to inspect")
            continue
        if isinstance(node, generic.DictionaryObject):
            found |= _of_dictionary(node)
            children = [node.raw_get(k) for k in node]
        elif isinstance(node, generic.ArrayObject):
            children = [node.raw_get(i) for i in range(len(node))]
        else:
            continue
        stack.extend((child, depth + 1) for child in children if isinstance(child, (generic.DictionaryObject, generic.ArrayObject)))
    return found


def _of_dictionary(obj: generic.DictionaryObject) -> set[str]:
    found: set[str] = set()
    action = obj.get("/S")
    if isinstance(action, generic.NameObject) and str(action) in _ACTIONS:
        found.add(_ACTIONS[str(action)])
    if "/JS" in obj or "/JavaScript" in obj:  # an action's script, or the document-level /Names /JavaScript tree
        found.add("JavaScript")
    if "/AA" in obj:
        found.add("automatic actions (/AA: run when a page or field is opened, closed or changed)")
    opening = obj.raw_get("/OpenAction") if "/OpenAction" in obj else None
    if opening is not None and not isinstance(opening, generic.ArrayObject):
        target = opening.get_object() if isinstance(opening, generic.IndirectObject) else opening
        if not isinstance(target, generic.ArrayObject) and not (isinstance(target, generic.DictionaryObject) and target.get("/S") == "/GoTo"):
            found.add("an action run when the document opens (/OpenAction)")
    if obj.get("/Type") == "/EmbeddedFile" or "/EmbeddedFiles" in obj or "/EF" in obj:
        found.add("embedded files")
    subtype = obj.get("/Subtype")
    if isinstance(subtype, generic.NameObject) and str(subtype) in _ANNOTATIONS and obj.get("/Type", "/Annot") == "/Annot":
        found.add(_ANNOTATIONS[str(subtype)])
    if "/XFA" in obj:
        found.add("XFA forms (scripted forms)")
    return found
