# SPDX-License-Identifier: MIT
"""A real SMTP relay for SmtpTlsTests: aiosmtpd's Controller (Debian python3-aiosmtpd; run with /usr/bin/python3).

--mode starttls: plain port, STARTTLS offered and required (require_starttls), AUTH only after TLS (auth_require_tls)
--mode implicit: TLS from the first byte (port 465 style; Controller(ssl_context=...)), AUTH offered
--mode plain:    no TLS at all, AUTH offered in clear (to show the client refuses to send credentials)

Authentication (PLAIN and LOGIN; --exclude PLAIN leaves only LOGIN) accepts exactly --user/--password; every attempt is
appended to OUT/auth.log as "MECHANISM USER ok|fail tls|clear". Each accepted message is written to OUT/mail/N.eml
with OUT/mail/N.json (from, to, tls, user). Prints "ready" once listening; exits when stdin closes.
"""
import argparse
import json
import os
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--cert", required=True)
p.add_argument("--key", required=True)
p.add_argument("--out", required=True)
p.add_argument("--mode", choices=["starttls", "implicit", "plain"], required=True)
p.add_argument("--user", required=True)
p.add_argument("--password", required=True)
p.add_argument("--exclude", action="append", default=[])
a = p.parse_args()

mail_dir = os.path.join(a.out, "mail")
os.makedirs(mail_dir, exist_ok=True)
lock = threading.Lock()


def is_tls(server):
    return server.transport is not None and server.transport.get_extra_info("ssl_object") is not None


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == a.user.encode() and auth_data.password == a.password.encode()
    user = auth_data.login.decode(errors="replace") if isinstance(auth_data, LoginPassword) else "?"
    with lock, open(os.path.join(a.out, "auth.log"), "a") as f:
        f.write(f"{mechanism} {user} {'ok' if ok else 'fail'} {'tls' if is_tls(server) else 'clear'}\n")
    # handled=False: aiosmtpd answers 535 itself (the default, handled=True, would leave the client without a reply)
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


class Handler:
    async def handle_DATA(self, server, session, envelope):
        with lock:
            n = len([f for f in os.listdir(mail_dir) if f.endswith(".eml")])
            base = os.path.join(mail_dir, str(n))
            with open(base + ".tmp", "wb") as f:
                f.write(envelope.original_content)
            meta = {
                "from": envelope.mail_from,
                "to": envelope.rcpt_tos,
                "tls": is_tls(server),
                "user": session.auth_data.login.decode() if session.authenticated and session.auth_data else None,
            }
            with open(base + ".json", "w") as f:
                json.dump(meta, f)
            os.rename(base + ".tmp", base + ".eml")
        return "250 Message accepted for delivery"


context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(a.cert, a.key)
kwargs = dict(
    authenticator=authenticator,
    auth_exclude_mechanism=a.exclude,
    # aiosmtpd counts only STARTTLS as TLS for auth_require_tls (implicit TLS would never offer AUTH); auth.log and the
    # .json still record from the transport whether AUTH and the message came over TLS.
    auth_require_tls=a.mode == "starttls",
)
if a.mode == "starttls":
    kwargs.update(tls_context=context, require_starttls=True)
controller = Controller(
    Handler(),
    hostname="127.0.0.1",
    port=a.port,
    ssl_context=context if a.mode == "implicit" else None,
    **kwargs,
)
controller.start()
print("ready", flush=True)
try:
    sys.stdin.read()
finally:
    controller.stop()
