"""Front-desk delivery: personalise handouts for a patient, print them, email them, record what was given.

One library for the command line and the front-desk web page alike: the
callers parse and show; everything else is here. Patient details stay in
memory, except in the delivery record (see record.py).
"""

from .batch import Row, deliver_rows, read_rows
from .mail import EmailResult, MailError, check_address, email_packet
from .patient import FIELDS, Injector, Patient, PatientError, check_patient, follow_up_date, staff
from .personalise import Packet, content_version, personalise, personalise_many
from .printing import PrintError, PrintJob, print_packet, printers
from .record import Delivery, Record, RecordError
from .settings import MachineSettings, load_settings

__all__ = [
    "FIELDS",
    "Delivery",
    "EmailResult",
    "Injector",
    "MachineSettings",
    "MailError",
    "Packet",
    "Patient",
    "PatientError",
    "PrintError",
    "PrintJob",
    "Record",
    "RecordError",
    "Row",
    "check_address",
    "check_patient",
    "content_version",
    "deliver_rows",
    "email_packet",
    "follow_up_date",
    "load_settings",
    "personalise",
    "personalise_many",
    "print_packet",
    "printers",
    "read_rows",
    "staff",
]
