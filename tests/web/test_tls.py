"""The clinic server's own certificate: a root made once, a server certificate for its host names,
and `brochure serve` without --cert serving it to a client that trusts only that root."""

from __future__ import annotations

import http.client
import re
import ssl
import subprocess
import sys
import threading

from conftest import copy_sample

from brochure.deliver import accounts
from brochure.web import tls


def test_the_root_is_kept_and_the_server_certificate_follows_the_host_names(tmp_path):
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    folder = tmp_path / "tls"
    first = tls.own_certificate(folder, ["desk.clinic.lan", "192.168.1.20"])
    root = first.root.read_bytes()
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert oct((folder / tls.ROOT_KEY).stat().st_mode & 0o777) == "0o600"
    assert oct(first.key.stat().st_mode & 0o777) == "0o600"
    [leaf, issuer] = x509.load_pem_x509_certificates(first.certificate.read_bytes())
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["desk.clinic.lan"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["192.168.1.20"]
    assert issuer.public_bytes(Encoding.PEM) == root
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= dt.timedelta(days=398)
    again = first.certificate.read_bytes()
    tls.own_certificate(folder, ["desk.clinic.lan", "192.168.1.20"])
    assert first.certificate.read_bytes() == again  # nothing changed: nothing made
    tls.own_certificate(folder, ["frontdesk.clinic.lan"])
    assert first.certificate.read_bytes() != again  # a new name: a new certificate ...
    assert first.root.read_bytes() == root  # ... from the same root, which the desks keep


def test_serve_without_a_certificate_makes_its_own_and_offers_its_root(tmp_path, settings):
    accounts.add(settings, "Ada Admin", "admin", "ada-pass")
    root = copy_sample(tmp_path / "clinic")
    command = [sys.executable, "-m", "brochure", "serve", "--project", str(root), "--bind", "127.0.0.1:0"]
    command += ["--host-name", "localhost"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    threading.Thread(target=process.stderr.read, daemon=True).start()
    try:
        lines = [process.stdout.readline() for _ in range(3)]
        port = int(re.search(r"https://localhost:(\d+)/", lines[0]).group(1))
        root_file = lines[2].removeprefix("Root certificate for the desk PCs: ").strip()
        assert root_file == str(settings.record_file.parent / "tls" / tls.ROOT_NAME)
        context = ssl.create_default_context(cafile=root_file)  # the chain and the name are checked
        connection = http.client.HTTPSConnection("localhost", port, context=context, timeout=30)
        connection.request("GET", "/signin")
        page = connection.getresponse().read().decode()
        assert 'href="/brochure-root-ca.crt">Download this server\'s root certificate' in page
        connection.request("GET", "/brochure-root-ca.crt")  # public: a new desk has no account yet
        answer = connection.getresponse()
        assert answer.status == 200
        assert answer.read() == open(root_file, "rb").read()
    finally:
        process.terminate()
        process.wait(15)


def test_serve_says_what_to_do_without_accounts_or_with_half_a_certificate(tmp_path, settings):
    from click.testing import CliRunner

    from brochure.cli.main import cli

    root = copy_sample(tmp_path / "clinic")
    empty = CliRunner().invoke(cli, ["serve", "--project", str(root), "--bind", "127.0.0.1:0"])
    assert empty.exit_code == 1
    assert "there are no staff accounts yet" in empty.output
    assert "brochure staff add" in empty.output
    accounts.add(settings, "Ada Admin", "admin", "ada-pass")
    key = tmp_path / "key.pem"
    key.write_text("x")
    half = CliRunner().invoke(cli, ["serve", "--project", str(root), "--key", str(key)])
    assert (half.exit_code, half.output) == (
        1,
        "Error: --cert and --key go together (give both, or neither)\n",
    )
    bad = CliRunner().invoke(cli, ["serve", "--project", str(root), "--bind", "8443"])
    assert bad.exit_code == 2
    assert "is not ADDRESS:PORT" in bad.output
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = CliRunner().invoke(cli, ["serve", "--project", str(root), "--bind", f"127.0.0.1:{port}"])
    assert busy.exit_code == 1
    assert busy.output.endswith(
        f"Error: port {port} is in use (is brochure serve already running?) (choose another --bind)\n"
    )
    junk = tmp_path / "cert.pem"
    junk.write_text("not a certificate")
    broken = CliRunner().invoke(
        cli,
        ["serve", "--project", str(root), "--bind", "127.0.0.1:0", "--cert", str(junk), "--key", str(key)],
    )
    assert broken.exit_code == 1
    assert f"Error: {junk}: the certificate or its key cannot be used" in broken.output
    assert "Traceback" not in broken.output
