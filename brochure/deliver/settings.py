"""This machine's delivery settings: printer, mail server, where the record is kept.

They live in the user's configuration folder, not in the project, which may
be shared or kept in version control. BROCHURE_SETTINGS names another file.
The mail password is never in it: it comes from BROCHURE_SMTP_PASSWORD or
the system keyring.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from brochure.base.errors import ConfigError, Problem
from brochure.project import schema
from brochure.project.config import read_toml
from brochure.project.schema import Field

APP = "brochure"
KEYRING_SERVICE = "brochure-smtp"


def _port(value: int) -> str | None:
    return None if 1 <= value <= 65535 else f"must be a port number from 1 to 65535, not {value}"


def _no_space(value: str) -> str | None:
    return None if value and not any(c.isspace() for c in value) else "must be one word, without spaces"


def _hours(value: str) -> str | None:
    return None if parse_hours(value) else 'must be two times of day like "09:00-19:00", the first earlier'


def parse_hours(value: str) -> tuple[dt.time, dt.time] | None:
    """ "09:00-19:00" as two times (None when it is not that)."""
    import re

    found = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", value)
    if not found:
        return None
    h1, m1, h2, m2 = (int(g) for g in found.groups())
    if not (h1 < 24 and h2 <= 24 and m1 < 60 and m2 < 60) or (h1, m1) >= (h2, m2):
        return None
    return dt.time(h1, m1), dt.time.max if h2 == 24 else dt.time(h2, m2)


#: When follow-up emails go out, by this computer's clock: not at night.
FOLLOW_UP_HOURS = "09:00-19:00"

SCHEMA: dict[str, Field] = {
    "printer": Field(
        dict,
        fields={"name": Field(str, check=_no_space, example='name = "front-desk"')},
    ),
    "smtp": Field(
        dict,
        fields={
            "host": Field(str, check=_no_space, example='host = "mail.example.com"'),
            "port": Field(int, check=_port, example="port = 587"),
            "user": Field(str, default="", example='user = "frontdesk@example.com"'),
            "sender": Field(str, default="", example='sender = "Example Clinic <frontdesk@example.com>"'),
            "cafile": Field(str, default="", example='cafile = "/etc/ssl/clinic-ca.pem"'),
            "tls": Field(
                str,
                default="starttls",
                check=schema.one_of("starttls", "implicit"),
                example='tls = "starttls"',
            ),
        },
    ),
    "record": Field(dict, fields={"path": Field(str, example='path = "/srv/clinic/deliveries.sqlite"')}),
    "drafts": Field(dict, fields={"path": Field(str, example='path = "~/brochure-drafts"')}),
    "follow_ups": Field(
        dict,
        fields={
            "hours": Field(str, default=FOLLOW_UP_HOURS, check=_hours, example='hours = "09:00-19:00"'),
        },
    ),
}


@dataclass(frozen=True)
class MachineSettings:
    """Settings of this machine (see load_settings); the SMTP password is not one of them."""

    file: Path
    exists: bool = False
    printer: str | None = None
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_user: str = ""
    smtp_sender: str = ""
    smtp_cafile: Path | None = None
    smtp_tls: str = "starttls"
    record_path: Path | None = None
    drafts_path: Path | None = None
    #: When follow-up emails may be sent ("09:00-19:00"; see parse_hours).
    follow_up_hours: str = FOLLOW_UP_HOURS
    warnings: tuple[Problem, ...] = ()

    @property
    def port(self) -> int:
        """The SMTP port: as set, else 465 for implicit TLS and 587 for STARTTLS."""
        return self.smtp_port or (465 if self.smtp_tls == "implicit" else 587)

    @property
    def record_file(self) -> Path:
        return self.record_path or user_data_dir() / "deliveries.sqlite"

    @property
    def drafts_folder(self) -> Path:
        return self.drafts_path or user_data_dir() / "drafts"

    def shown(self) -> list[tuple[str, str]]:
        """(key, value) pairs for `brochure settings`; the password only as where it comes from."""
        unset = "(not set)"
        return [
            ("printer.name", self.printer or "(the system's default printer)"),
            ("smtp.host", self.smtp_host or unset),
            ("smtp.port", str(self.port)),
            ("smtp.user", self.smtp_user or unset),
            ("smtp.sender", self.smtp_sender or unset),
            ("smtp.cafile", str(self.smtp_cafile) if self.smtp_cafile else "(the system's certificates)"),
            ("smtp.tls", self.smtp_tls),
            ("smtp password", password_source(self)),
            ("record.path", str(self.record_file)),
            ("drafts.path", str(self.drafts_folder)),
            ("follow_ups.hours", self.follow_up_hours),
        ]


def user_config_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir(APP, appauthor=False))


def user_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir(APP, appauthor=False))


def settings_file() -> Path:
    """BROCHURE_SETTINGS, else settings.toml in the user's configuration folder."""
    named = os.environ.get("BROCHURE_SETTINGS", "").strip()
    return Path(named).expanduser() if named else user_config_dir() / "settings.toml"


def load_settings(path: Path | None = None) -> MachineSettings:
    """Read and check the settings file (absent: all defaults); errors name file, line, key and fix."""
    path = path or settings_file()
    shown = str(path)
    if not path.is_file():
        if os.environ.get("BROCHURE_SETTINGS", "").strip() and path == settings_file():
            raise ConfigError.at(
                shown,
                None,
                "settings file not found (named by BROCHURE_SETTINGS)",
                "create it, or unset the variable",
            )
        return MachineSettings(file=path)
    data, lines = read_toml(path, shown)
    result = schema.validate(data, SCHEMA, shown, lines)
    problems: list[Problem] = list(result.errors)
    values = result.values
    smtp = values["smtp"]

    def path_of(value: str | None, key: str, must_exist: bool = False) -> Path | None:
        if not value:
            return None
        found = Path(value).expanduser()
        if not found.is_absolute():
            problems.append(
                Problem(
                    shown, lines.get(key), f"key '{key}' must be an absolute path", "start it with / or ~/"
                )
            )
            return None
        if must_exist and not found.is_file():
            problems.append(
                Problem(
                    shown, lines.get(key), f"key '{key}' names a file that does not exist", "check the path"
                )
            )
        return found

    cafile = path_of(smtp["cafile"], "smtp.cafile", must_exist=True)
    record = path_of(values["record"]["path"], "record.path")
    drafts = path_of(values["drafts"]["path"], "drafts.path")
    if smtp["user"] and not smtp["host"]:
        problems.append(
            Problem(shown, lines.get("smtp.user"), "smtp.user is set but smtp.host is not", "add host")
        )
    if problems:
        raise ConfigError(problems)
    return MachineSettings(
        file=path,
        exists=True,
        printer=values["printer"]["name"],
        smtp_host=smtp["host"],
        smtp_port=smtp["port"],
        smtp_user=smtp["user"],
        smtp_sender=smtp["sender"],
        smtp_cafile=cafile,
        smtp_tls=smtp["tls"],
        record_path=record,
        drafts_path=drafts,
        follow_up_hours=values["follow_ups"]["hours"],
        warnings=tuple(result.warnings),
    )


def password_source(settings: MachineSettings) -> str:
    """Where the SMTP password would come from, for `brochure settings` (never the password)."""
    if os.environ.get("BROCHURE_SMTP_PASSWORD"):
        return "from BROCHURE_SMTP_PASSWORD"
    if not settings.smtp_user:
        return "(none: no smtp.user)"
    return f"from the system keyring (service {KEYRING_SERVICE!r}, user {settings.smtp_user!r})"


def smtp_password(settings: MachineSettings) -> str | None:
    """The SMTP password from BROCHURE_SMTP_PASSWORD, else the system keyring; None if neither has one."""
    from_env = os.environ.get("BROCHURE_SMTP_PASSWORD")
    if from_env:
        return from_env
    if not settings.smtp_user:
        return None
    try:
        import keyring
        from keyring.errors import KeyringError

        return keyring.get_password(KEYRING_SERVICE, settings.smtp_user)
    except (ImportError, KeyringError, RuntimeError):
        return None
