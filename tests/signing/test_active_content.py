"""Uploads with active content (scripts, actions, embedded files, multimedia) are refused, naming what was found."""

from __future__ import annotations


import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from signing.errors import ActiveContent, InvalidPdf
from signing.sealer import PadesSealer
from tests.signing.conftest import DEPARTMENT
from tests.signing.test_record import RECORD, _with


def _n(name: str) -> generic.NameObject:
    return generic.NameObject(name)


def _action(kind: str, **extra: generic.PdfObject) -> generic.DictionaryObject:
    return generic.DictionaryObject({_n("/Type"): _n("/Action"), _n("/S"): _n(kind), **{_n("/" + k): v for k, v in extra.items()}})


def _open_action(action: generic.DictionaryObject):  # type: ignore[no-untyped-def]
    def change(writer: IncrementalPdfFileWriter) -> None:
        writer.root[_n("/OpenAction")] = writer.add_object(action)
        writer.update_root()
    return change


def _annotation(subtype: str, **extra: generic.PdfObject):  # type: ignore[no-untyped-def]
    def change(writer: IncrementalPdfFileWriter) -> None:
        page_ref, _ = writer.find_page_for_modification(0)
        page = page_ref.get_object()
        annot = generic.DictionaryObject({_n("/Type"): _n("/Annot"), _n("/Subtype"): _n(subtype),
                                          _n("/Rect"): generic.ArrayObject([generic.NumberObject(v) for v in (0, 0, 10, 10)]),
                                          **{_n("/" + k): v for k, v in extra.items()}})
        page[_n("/Annots")] = generic.ArrayObject([writer.add_object(annot)])
        writer.update_container(page)
    return change


def _embedded_file(writer: IncrementalPdfFileWriter) -> None:
    stream = writer.add_object(generic.StreamObject({_n("/Type"): _n("/EmbeddedFile")}, stream_data=b"MZ\x90\x00 not really an exe"))
    spec = writer.add_object(generic.DictionaryObject({_n("/Type"): _n("/Filespec"), _n("/F"): generic.TextStringObject("setup.exe"),
                                                       _n("/EF"): generic.DictionaryObject({_n("/F"): stream})}))
    names = generic.DictionaryObject({_n("/EmbeddedFiles"): generic.DictionaryObject(
        {_n("/Names"): generic.ArrayObject([generic.TextStringObject("setup.exe"), spec])})})
    writer.root[_n("/Names")] = writer.add_object(names)
    writer.update_root()


def _page_aa(writer: IncrementalPdfFileWriter) -> None:
    page_ref, _ = writer.find_page_for_modification(0)
    page = page_ref.get_object()
    page[_n("/AA")] = generic.DictionaryObject({_n("/O"): writer.add_object(_action("/URI", URI=generic.TextStringObject("http://x.test")))})
    writer.update_container(page)


ACTIVE = {
    "javascript_open_action": (_open_action(_action("/JavaScript", JS=generic.TextStringObject("app.alert('hi')"))), "JavaScript"),
    "launch_open_action": (_open_action(_action("/Launch", F=generic.TextStringObject("calc.exe"))), "launch"),
    "submit_form": (_annotation("/Widget", A=_action("/SubmitForm", F=generic.TextStringObject("http://evil.test"))), "submit-form"),
    "embedded_file": (_embedded_file, "embedded files"),
    "rich_media": (_annotation("/RichMedia"), "rich media"),
    "file_attachment": (_annotation("/FileAttachment"), "attachments"),
    "page_open_action": (_page_aa, "automatic actions"),
}


@pytest.mark.parametrize("case", sorted(ACTIVE))
def test_active_content_is_refused_and_named(sealer: PadesSealer, case: str) -> None:
    change, named = ACTIVE[case]
    with pytest.raises(ActiveContent, match=named) as caught:
        sealer.seal_uploaded(DEPARTMENT, _with(change), RECORD)
    assert isinstance(caught.value, InvalidPdf) and caught.value.status == 422 and caught.value.slug == "pdf-active-content"


def test_links_and_a_goto_open_action_stay_allowed(sealer: PadesSealer) -> None:
    goto = _open_action(_action("/GoTo", D=generic.ArrayObject([generic.NumberObject(0), _n("/Fit")])))
    link = _annotation("/Link", A=_action("/URI", URI=generic.TextStringObject("https://gov.example")))
    for change in (goto, link):
        assert sealer.seal_uploaded(DEPARTMENT, _with(change), RECORD).startswith(b"%PDF")
