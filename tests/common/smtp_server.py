#!/usr/bin/python3
"""A real SMTP server for keepmon's mail tests (Debian's python3-aiosmtpd).

Listens on 127.0.0.1:PORT and writes every accepted message to OUTDIR as
NNNNNN.json: {"mail_from", "rcpt_tos", "auth_user", "tls", "data"}, written
atomically (temp file, then rename). Prints "READY <port>" once listening.

Options:
  --port N            port to listen on (0: any; the chosen port is printed)
  --out DIR           where accepted messages go
  --cert F --key F    offer STARTTLS with this certificate (and require it)
  --implicit-tls      TLS from the first byte instead of STARTTLS
  --auth USER:PASS    require AUTH (PLAIN or LOGIN) with these credentials
  --fail-first N      answer the first N DATA commands with --fail-code
  --fail-code TEXT    e.g. "451 4.3.0 try again later" (default)
  --reject TEXT       answer every DATA with TEXT (e.g. "550 5.1.1 no such user")
  --host ADDR         address to listen on (default 127.0.0.1)
  --mode-file F       read F at every DATA: "4xx" answers 451, "5xx" answers 554,
                      anything else (or no file) accepts (bench/soak switches it)
  --helo-reply TEXT   answer every HELO with TEXT (e.g. "554 5.7.1 go away")

Every HELO name a client sends is appended to OUTDIR/helo.log, one a line
(keepalived's SMTP_CHECK and keepmon's smtp monitor say HELO).
"""

import argparse
import asyncio
import json
import os
import ssl
import sys
import time

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler:
    def __init__(self, args):
        self.out = args.out
        self.fail_left = args.fail_first
        self.fail_code = args.fail_code
        self.reject = args.reject
        self.mode_file = args.mode_file
        self.helo_reply = args.helo_reply
        os.makedirs(self.out, exist_ok=True)
        # A restarted server (bench/soak) goes on numbering after what is there.
        self.count = sum(1 for n in os.listdir(self.out) if n.endswith(".json"))

    async def handle_HELO(self, server, session, envelope, hostname):
        with open(os.path.join(self.out, "helo.log"), "a") as f:
            f.write(hostname + "\n")
        if self.helo_reply:
            return self.helo_reply
        session.host_name = hostname
        return "250 %s" % server.hostname

    async def handle_DATA(self, server, session, envelope):
        if self.reject:
            return self.reject
        if self.mode_file:
            try:
                with open(self.mode_file) as f:
                    mode = f.read().strip()
            except FileNotFoundError:
                mode = ""
            if mode == "4xx":
                return "451 4.3.0 soak: try again later"
            if mode == "5xx":
                return "554 5.0.0 soak: refused"
        if self.fail_left > 0:
            self.fail_left -= 1
            return self.fail_code
        self.count += 1
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "auth_user": session.authenticated and getattr(session.auth_data, "login", None),
            "tls": session.ssl is not None
            or server.transport.get_extra_info("ssl_object") is not None,
            "data": envelope.original_content.decode("utf-8", "replace"),
            "received": time.time(),
        }
        if isinstance(record["auth_user"], bytes):
            record["auth_user"] = record["auth_user"].decode()
        name = os.path.join(self.out, "%06d.json" % self.count)
        tmp = name + ".tmp"
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, name)
        return "250 2.0.0 OK queued as %d" % self.count


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        # handled=False: aiosmtpd itself answers 535 on failure.
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return check


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--implicit-tls", action="store_true")
    p.add_argument("--auth")
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--fail-code", default="451 4.3.0 try again later")
    p.add_argument("--reject")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--mode-file")
    p.add_argument("--helo-reply")
    args = p.parse_args()

    handler = Handler(args)
    tls = None
    if args.cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.cert, args.key)
    kwargs = {"hostname": "smtp.test", "enable_SMTPUTF8": True}
    if tls and not args.implicit_tls:
        kwargs.update(tls_context=tls, require_starttls=True)
    if args.auth:
        user, password = args.auth.split(":", 1)
        kwargs.update(
            authenticator=authenticator(user, password),
            auth_required=True,
            # Over implicit TLS aiosmtpd does not see the TLS layer itself.
            auth_require_tls=bool(tls) and not args.implicit_tls,
        )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, **kwargs),
        host=args.host,
        port=args.port,
        ssl=tls if args.implicit_tls else None,
    )
    port = server.sockets[0].getsockname()[1]
    print("READY %d" % port, flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
