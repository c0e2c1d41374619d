"""Front-desk delivery: personalise handouts for a patient, print them, email them, record what was given.

One library for the command line and the front-desk web page alike: the
callers parse and show; everything else is here. Patient details stay in
memory, except in the delivery record (see record.py).
"""

import importlib
from typing import Any

#: What the package offers, and the module each comes from. They load when
#: first used, so a command that does not deliver (brochure build) does not
#: pay for mail, TLS and the record.
_EXPORTS = {
    "Delivery": "record",
    "EmailResult": "mail",
    "FIELDS": "patient",
    "Injector": "patient",
    "MachineSettings": "settings",
    "MailError": "mail",
    "Packet": "packet",
    "Patient": "patient",
    "PatientError": "patient",
    "PrintError": "printing",
    "PrintJob": "printing",
    "Record": "record",
    "RecordError": "record",
    "Row": "batch",
    "check_address": "mail",
    "check_patient": "patient",
    "content_version": "packet",
    "deliver_rows": "batch",
    "email_packet": "mail",
    "follow_up_date": "patient",
    "load_settings": "settings",
    "personalise": "packet",
    "personalise_many": "packet",
    "print_packet": "printing",
    "printers": "printing",
    "read_rows": "batch",
    "staff": "patient",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:  # noqa: ANN401 - whatever the module offers
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
