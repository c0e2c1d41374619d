"""`brochure staff`: the clinic's staff accounts, managed on the server's terminal."""

from __future__ import annotations

import click

from brochure.cli.edge import table, user_errors


@click.group()
def staff() -> None:
    """Staff accounts: a name, a role and a password or PIN for each person.

    Roles: front-desk (personalise and deliver), editor (also the content
    status), admin (also staff and settings). Passwords are asked for, never
    given as options, and kept only as argon2id hashes, beside the delivery
    record. Five wrong passwords in a row lock an account for 15 minutes.
    Each change is a line of the audit trail. Once the clinic has accounts,
    `brochure print --staff NAME` and `brochure email --staff NAME` must
    name one.

    \b
    Example:
        brochure staff add "Dana Smith" --role front-desk
        brochure staff list
        brochure staff disable "Dana Smith"
        brochure staff reset "Dana Smith"
    """


def _password() -> str:
    return click.prompt("Password or PIN", hide_input=True, confirmation_prompt="Type it again")


@staff.command()
@click.argument("name")
@click.option(
    "--role", type=click.Choice(["front-desk", "editor", "admin"]), default="front-desk", show_default=True
)
@user_errors
def add(name: str, role: str) -> None:
    """Make an account for NAME; the password or PIN is asked for twice.

    \b
    Example:
        brochure staff add "Dana Smith" --role front-desk
    """
    from brochure.deliver import accounts
    from brochure.deliver.settings import load_settings

    account = accounts.add(load_settings(), name, role, _password())
    click.echo(f"Added {account.name} ({account.role}).")


@staff.command(name="list")
@user_errors
def list_accounts() -> None:
    """List the accounts, their roles and whether each may sign in.

    \b
    Example:
        brochure staff list
    """
    from brochure.deliver import accounts
    from brochure.deliver.settings import load_settings

    found = accounts.accounts(load_settings())
    if not found:
        click.echo("No staff accounts yet (add one with: brochure staff add NAME).")
        return
    rows = []
    for a in found:
        state = (
            "disabled"
            if not a.active
            else f"locked until {a.locked_until:%H:%M}"
            if a.locked_until
            else "active"
        )
        rows.append((a.name, a.role, state))
    table(("NAME", "ROLE", "STATE"), rows)


@staff.command()
@click.argument("name")
@user_errors
def disable(name: str) -> None:
    """Stop NAME from signing in or being named for a delivery; past deliveries keep the name.

    \b
    Example:
        brochure staff disable "Dana Smith"
    """
    from brochure.deliver import accounts
    from brochure.deliver.settings import load_settings

    account = accounts.disable(load_settings(), name)
    click.echo(f"Disabled {account.name}.")


@staff.command()
@click.argument("name")
@user_errors
def reset(name: str) -> None:
    """Give NAME a new password or PIN (asked for twice); the account is active and unlocked again.

    \b
    Example:
        brochure staff reset "Dana Smith"
    """
    from brochure.deliver import accounts
    from brochure.deliver.settings import load_settings

    settings = load_settings()
    accounts.find(settings, name)  # an unknown name fails before the password is asked
    account = accounts.reset(settings, name, _password())
    click.echo(f"Reset {account.name}: it can sign in with the new password.")
