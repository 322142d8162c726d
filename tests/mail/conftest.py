"""Mail fixtures: the local mail sink on a real socket and a throwaway certificate for TLS."""

from __future__ import annotations

import shutil
import ssl
import subprocess

import pytest
from mail_kit import Tls

from dentbook.mail.sink import MailSink
from dentbook.mail.smtp import SmtpConfig, parse_smtp_url


@pytest.fixture
def sink_config(sink: MailSink) -> SmtpConfig:
    return parse_smtp_url(sink.url)


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A self-signed certificate for localhost/127.0.0.1, made with the openssl tool."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl tool is needed to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
        check=True, capture_output=True)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(d / "cert.pem", d / "key.pem")
    return Tls(cafile=d / "cert.pem", server=server)
