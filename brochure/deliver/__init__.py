"""Front-desk delivery: personalise handouts for a patient, print them, email them, record what was given.

One library for the command line and the front-desk web page alike: the
callers parse and show; everything else is here. Patient details stay in
memory, except in the delivery record (see record.py).
"""

from .patient import FIELDS, Injector, Patient, PatientError, check_patient, follow_up_date, staff
from .personalise import Packet, content_version, personalise
from .printing import PrintError, PrintJob, print_packet, printers
from .settings import MachineSettings, load_settings

__all__ = [
    "FIELDS",
    "Injector",
    "MachineSettings",
    "Packet",
    "Patient",
    "PatientError",
    "PrintError",
    "PrintJob",
    "check_patient",
    "content_version",
    "follow_up_date",
    "load_settings",
    "personalise",
    "print_packet",
    "printers",
    "staff",
]
