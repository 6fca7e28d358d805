#!/usr/bin/env python3
"""A pysaml2 SAML 2.0 identity provider for fedgate's interop chain (tests only).

One process serves every case of tests/interop/saml/chain.mjs; the driver switches the behaviour
with POST /mode (JSON). Nothing here is fit for production: there is no login page, every
AuthnRequest is answered for one fixed test user (alice), and the keys are throw-away.

    idp.py --port 0 --workdir DIR        prints "READY http://127.0.0.1:PORT" once it listens

Endpoints (BASE = http://127.0.0.1:PORT; the IdP entity ID is BASE/metadata):
  GET  /metadata                IdP metadata (signing certificate, SSO Redirect + POST endpoints)
  GET  /sso/redirect            SSO, HTTP-Redirect binding (SAMLRequest, RelayState, SigAlg, Signature)
  POST /sso/post                SSO, HTTP-POST binding (form: SAMLRequest, RelayState)
  GET  /idp-initiated?sp=ENTITY[&relay_state=..]   unsolicited Response to the SP's POST ACS
  GET|POST /mode                read / merge the behaviour knobs (see DEFAULT_MODE); POST /reset
  POST /sp                      {"metadata_url": ...} or {"metadata_xml": ...}: load an SP's metadata
  GET  /last                    what the last SSO request looked like (binding, signature checks, ...)
  GET  /healthz

SP metadata is also fetched lazily: an AuthnRequest from an unknown Issuer that is an http(s) URL
loads that URL as metadata (fedgate's SP entity ID is its metadata URL).

Redirect-binding signatures are verified over the raw query octets as SAML bindings §3.4.4.1 says
(the rule fedgate must satisfy), and pysaml2's own check (which re-encodes the parameters) is run
too; both results are reported in /last. An invalid signature is answered 400.
"""

import argparse
import base64
import copy
import json
import logging
import os
import subprocess
import sys
import threading
import traceback
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, saml
from saml2.assertion import Policy
from saml2.attribute_converter import AttributeConverter
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.s_utils import UnknownPrincipal, UnsupportedBinding
from saml2.saml import NAME_FORMAT_BASIC, NAME_FORMAT_UNSPECIFIED, NAME_FORMAT_URI, NameID
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT
from saml2.server import Server
from saml2.sigver import get_pem_wrapped_unwrapped, make_temp, pre_encryption_part
from saml2.xmldsig import DIGEST_SHA1, DIGEST_SHA256, DIGEST_SHA512, SIG_RSA_SHA1, SIG_RSA_SHA256, SIG_RSA_SHA512

log = logging.getLogger("idp")

PASSWORD_PROTECTED_TRANSPORT = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"

NAME_FORMATS = {"basic": NAME_FORMAT_BASIC, "uri": NAME_FORMAT_URI, "unspecified": NAME_FORMAT_UNSPECIFIED}
NAMEID_FORMATS = {
    "persistent": NAMEID_FORMAT_PERSISTENT,
    "transient": NAMEID_FORMAT_TRANSIENT,
    "email": NAMEID_FORMAT_EMAILADDRESS,
}
SIG_ALGS = {"rsa-sha256": SIG_RSA_SHA256, "rsa-sha512": SIG_RSA_SHA512, "rsa-sha1": SIG_RSA_SHA1}
DIGEST_ALGS = {"sha256": DIGEST_SHA256, "sha512": DIGEST_SHA512, "sha1": DIGEST_SHA1}
# Block cipher of the EncryptedData and the xmlsec1 --session-key that goes with it. pysaml2 itself
# always uses tripledes-cbc; the AES ones are what modern IdPs send.
ENC_ALGS = {
    "aes128-cbc": ("http://www.w3.org/2001/04/xmlenc#aes128-cbc", "aes-128"),
    "aes256-cbc": ("http://www.w3.org/2001/04/xmlenc#aes256-cbc", "aes-256"),
    "aes128-gcm": ("http://www.w3.org/2009/xmlenc11#aes128-gcm", "aes-128"),
    "aes256-gcm": ("http://www.w3.org/2009/xmlenc11#aes256-gcm", "aes-256"),
    "tripledes-cbc": ("http://www.w3.org/2001/04/xmlenc#tripledes-cbc", "des-192"),
}
KEY_ENC_ALGS = {
    "rsa-oaep-mgf1p": "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
    # Needs xmlsec1 >= 1.3 (Debian bookworm has 1.2.37, whose --encrypt fails with it).
    "rsa-oaep": "http://www.w3.org/2009/xmlenc11#rsa-oaep",
}
REDIRECT_SIG_HASHES = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": hashes.SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": hashes.SHA512,
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1": hashes.SHA1,
}

DEFAULT_MODE = {
    "sign_response": True,
    "sign_assertion": False,
    "encrypt_assertion": False,
    "enc_alg": "aes256-cbc",
    "key_enc_alg": "rsa-oaep-mgf1p",
    "sign_alg": "rsa-sha256",
    "digest_alg": "sha256",
    # Refuse AuthnRequests over HTTP-Redirect without a Signature (fedgate signs by default).
    "require_signed_redirect": False,
    # pysaml2's own want_authn_requests_signed: every AuthnRequest must be signed (Redirect: query
    # signature; POST: enveloped XML signature), checked by pysaml2 with the SP metadata's key.
    "want_authn_requests_signed": False,
    "name_id_format": "persistent",
    "name_id": "alice-7f3a9c2e",
    "attribute_name_format": "basic",
    "attributes": {
        "email": ["alice@example.com"],
        "givenName": ["Alice"],
        "sn": ["Anderson"],
        "displayName": ["Alice Anderson"],
        "groups": ["engineering", "admins"],
    },
    "lifetime_minutes": 5,
    # A failure Response instead of an assertion: second-level StatusCode (e.g.
    # urn:oasis:names:tc:SAML:2.0:status:AuthnFailed) under Responder, with a StatusMessage.
    "error_status": None,
    "error_message": None,
}


def generate_keys(workdir):
    key = os.path.join(workdir, "idp.key.pem")
    crt = os.path.join(workdir, "idp.crt.pem")
    if not (os.path.exists(key) and os.path.exists(crt)):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "30",
             "-subj", "/CN=pysaml2 interop IdP", "-keyout", key, "-out", crt],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    return key, crt


class InteropServer(Server):
    """pysaml2's Server, with the encryption algorithms chosen by the mode instead of 3DES."""

    enc_alg = "aes256-cbc"
    key_enc_alg = "rsa-oaep-mgf1p"

    def _encrypt_assertion(self, encrypt_cert, sp_entity_id, response, node_xpath=None):
        msg_enc, session_key = ENC_ALGS[self.enc_alg]
        certs = [(None, encrypt_cert)] if encrypt_cert else self.metadata.certs(sp_entity_id, "any", "encryption")
        if not certs:
            raise ValueError(f"no encryption certificate for {sp_entity_id} in its metadata")
        error = None
        for cert_name, cert in certs:
            wrapped, unwrapped = get_pem_wrapped_unwrapped(cert)
            try:
                tmp = make_temp(wrapped.encode("ascii"), decode=False, delete_tmpfiles=self.config.delete_tmpfiles)
                template = pre_encryption_part(
                    msg_enc=msg_enc, key_enc=KEY_ENC_ALGS[self.key_enc_alg], key_name=cert_name,
                    encrypt_cert=unwrapped,
                )
                return self.sec.encrypt_assertion(response, tmp.name, template, key_type=session_key,
                                                  node_xpath=node_xpath)
            except Exception as e:  # try the next certificate
                error = e
        raise error


class Idp:
    def __init__(self, base, key_file, cert_file):
        self.base = base
        self.entity_id = f"{base}/metadata"
        self.lock = threading.RLock()
        self.mode = copy.deepcopy(DEFAULT_MODE)
        self.last = {}
        with open(cert_file) as f:
            self.cert_pem = f.read()
        conf = IdPConfig()
        conf.load({
            "entityid": self.entity_id,
            "description": "pysaml2 interop IdP",
            "xmlsec_binary": os.environ.get("XMLSEC1", "/usr/bin/xmlsec1"),
            "key_file": key_file,
            "cert_file": cert_file,
            "accepted_time_diff": 60,
            "service": {
                "idp": {
                    "name": "pysaml2 interop IdP",
                    "endpoints": {
                        "single_sign_on_service": [
                            (f"{base}/sso/redirect", BINDING_HTTP_REDIRECT),
                            (f"{base}/sso/post", BINDING_HTTP_POST),
                        ],
                    },
                    "name_id_format": [NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT],
                    # Checked by hand in sso_redirect (over the raw query); POST requests with an
                    # embedded signature are still verified by pysaml2.
                    "want_authn_requests_signed": False,
                    "policy": {"default": {"lifetime": {"minutes": 5}, "attribute_restrictions": None,
                                           "name_form": NAME_FORMAT_BASIC}},
                },
            },
            "metadata": {},
        })
        self.server = InteropServer(config=conf)

    # ---- metadata

    def metadata_xml(self):
        return str(entity_descriptor(self.server.config))

    def load_sp(self, metadata_url=None, metadata_xml=None):
        with self.lock:
            if metadata_url:
                req = urllib.request.Request(metadata_url, headers={"accept": "application/samlmetadata+xml"})
                with urllib.request.urlopen(req, timeout=10) as r:
                    metadata_xml = r.read().decode("utf-8")
            self.server.metadata.load("inline", metadata_xml)
            return [e for e in self.server.metadata.keys()]

    def ensure_sp(self, entity_id):
        if entity_id in self.server.metadata.keys():
            return
        if entity_id.startswith(("http://", "https://")):
            self.load_sp(metadata_url=entity_id)
        if entity_id not in self.server.metadata.keys():
            raise UnknownPrincipal(f"unknown SP {entity_id}")

    # ---- SSO

    def verify_redirect_raw(self, raw_query, issuer):
        """SAML bindings 3.4.4.1: the signature covers the query octets as received, in the order
        SAMLRequest, RelayState (when present), SigAlg."""
        parts = {}
        for item in raw_query.split("&"):
            k, _, v = item.partition("=")
            parts.setdefault(k, v)
        signed = "&".join(f"{k}={parts[k]}" for k in ("SAMLRequest", "RelayState", "SigAlg") if k in parts)
        sigalg = urllib.parse.unquote_plus(parts.get("SigAlg", ""))
        signature = base64.b64decode(urllib.parse.unquote_plus(parts["Signature"]))
        halg = REDIRECT_SIG_HASHES.get(sigalg)
        if halg is None:
            return False, f"unsupported SigAlg {sigalg}"
        certs = self.server.metadata.certs(issuer, "spsso", "signing")
        if not certs:
            return False, f"no signing certificate for {issuer} in its metadata"
        for _, cert in certs:
            wrapped, _ = get_pem_wrapped_unwrapped(cert)
            key = x509.load_pem_x509_certificate(wrapped.encode("ascii")).public_key()
            try:
                key.verify(signature, signed.encode("ascii"), padding.PKCS1v15(), halg())
                return True, f"verified with {sigalg}"
            except InvalidSignature:
                continue
        return False, "signature does not verify with the SP's signing certificate(s)"

    def handle_authn_request(self, binding, saml_request, relay_state, raw_query=None, sigalg=None, signature=None):
        with self.lock:
            info = {"binding": "redirect" if binding == BINDING_HTTP_REDIRECT else "post",
                    "relay_state": relay_state, "signed_query": signature is not None}
            self.last = info
            xml = self.server.unravel(saml_request, binding, "authn_request")
            info["xml"] = xml.decode("utf-8") if isinstance(xml, bytes) else xml
            # Who sent it (load its metadata first: pysaml2 needs it for the ACS and the certificates).
            from saml2.samlp import authn_request_from_string

            peek = authn_request_from_string(xml)
            issuer = peek.issuer.text.strip() if peek is not None and peek.issuer is not None else None
            if not issuer:
                raise ValueError("AuthnRequest without an Issuer")
            info["issuer"] = issuer
            info["embedded_signature"] = peek.signature is not None
            self.ensure_sp(issuer)
            if binding == BINDING_HTTP_REDIRECT:
                if signature is not None:
                    ok, why = self.verify_redirect_raw(raw_query, issuer)
                    info["raw_signature_valid"], info["raw_signature_detail"] = ok, why
                    # pysaml2's own check re-encodes the parameters with urlencode; informational.
                    from saml2.sigver import verify_redirect_signature

                    msg = {"SAMLRequest": saml_request, "SigAlg": sigalg, "Signature": signature}
                    if relay_state is not None:
                        msg["RelayState"] = relay_state
                    try:
                        info["pysaml2_signature_valid"] = any(
                            verify_redirect_signature(msg, self.server.sec.sec_backend, cert)
                            for _, cert in self.server.metadata.certs(issuer, "spsso", "signing"))
                    except Exception as e:
                        info["pysaml2_signature_valid"] = f"error: {e!r}"
                    if not ok:
                        raise PermissionError(f"AuthnRequest signature invalid: {why}")
                elif self.mode["require_signed_redirect"]:
                    raise PermissionError("unsigned AuthnRequest over HTTP-Redirect")
            self.server.config.setattr("idp", "want_authn_requests_signed", bool(self.mode["want_authn_requests_signed"]))
            try:
                req = self.server.parse_authn_request(saml_request, binding, relay_state=relay_state, sigalg=sigalg,
                                                      signature=signature)
            except Exception as e:
                info["pysaml2_refused"] = f"{type(e).__name__}: {e}"
                raise PermissionError(f"pysaml2 refused the AuthnRequest: {type(e).__name__}: {e}") from e
            info["id"] = req.message.id
            info["destination"] = req.message.destination
            info["acs_url"] = req.message.assertion_consumer_service_url
            info["protocol_binding"] = req.message.protocol_binding
            args = self.server.response_args(req.message, [BINDING_HTTP_POST])
            return self.respond(in_response_to=args["in_response_to"], destination=args["destination"],
                                sp_entity_id=args["sp_entity_id"], relay_state=relay_state,
                                name_id_policy=args.get("name_id_policy"))

    def idp_initiated(self, sp_entity_id, relay_state=None):
        with self.lock:
            self.ensure_sp(sp_entity_id)
            acs = self.server.metadata.assertion_consumer_service(sp_entity_id, BINDING_HTTP_POST)
            if not acs:
                raise UnsupportedBinding(f"{sp_entity_id} has no HTTP-POST AssertionConsumerService")
            self.last = {"binding": "idp-initiated", "issuer": sp_entity_id}
            return self.respond(in_response_to=None, destination=acs[0]["location"], sp_entity_id=sp_entity_id,
                                relay_state=relay_state)

    def respond(self, in_response_to, destination, sp_entity_id, relay_state, name_id_policy=None):
        m = self.mode
        if m["error_status"]:
            resp = self.server.create_error_response(
                in_response_to, destination, (m["error_status"], m["error_message"]),
                sign=m["sign_response"], sign_alg=SIG_ALGS[m["sign_alg"]], digest_alg=DIGEST_ALGS[m["digest_alg"]],
            )
            xml = str(resp)
            self.last.update({"response_xml": xml, "response_destination": destination, "in_response_to": in_response_to})
            http_args = self.server.apply_binding(BINDING_HTTP_POST, xml, destination, relay_state, response=True)
            return http_args["data"]
        fmt = NAME_FORMATS[m["attribute_name_format"]]
        conv = AttributeConverter(fmt)
        conv._to = {k.lower(): k for k in m["attributes"]}  # send the names exactly as configured
        self.server.config.attribute_converters = [conv]
        self.server.enc_alg = m["enc_alg"]
        self.server.key_enc_alg = m["key_enc_alg"]
        policy = Policy({"default": {"lifetime": {"minutes": m["lifetime_minutes"]}, "attribute_restrictions": None,
                                     "name_form": fmt}}, mds=self.server.metadata)
        name_id = NameID(format=NAMEID_FORMATS[m["name_id_format"]], text=m["name_id"],
                         name_qualifier=self.entity_id, sp_name_qualifier=sp_entity_id)
        resp = self.server.create_authn_response(
            identity=copy.deepcopy(m["attributes"]),
            in_response_to=in_response_to,
            destination=destination,
            sp_entity_id=sp_entity_id,
            name_id=name_id,
            authn={"class_ref": PASSWORD_PROTECTED_TRANSPORT, "authn_auth": self.entity_id},
            sign_response=m["sign_response"],
            sign_assertion=m["sign_assertion"],
            encrypt_assertion=m["encrypt_assertion"],
            encrypt_assertion_self_contained=True,
            sign_alg=SIG_ALGS[m["sign_alg"]],
            digest_alg=DIGEST_ALGS[m["digest_alg"]],
            release_policy=policy,
        )
        xml = str(resp)
        if m["encrypt_assertion"] and "EncryptedAssertion" not in xml:
            raise ValueError("asked to encrypt, but pysaml2 found no SP encryption certificate")
        self.last.update({"response_xml": xml, "response_destination": destination, "in_response_to": in_response_to})
        http_args = self.server.apply_binding(BINDING_HTTP_POST, xml, destination, relay_state, response=True)
        return http_args["data"]


class Handler(BaseHTTPRequestHandler):
    idp: Idp = None
    server_version = "pysaml2-interop-idp"

    def log_message(self, fmt, *args):
        log.info("%s %s", self.address_string(), fmt % args)

    def send(self, status, body, ctype="text/plain; charset=utf-8"):
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(data)))
        self.send_header("cache-control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def send_json(self, status, obj):
        self.send(status, json.dumps(obj, indent=1), "application/json")

    def body(self):
        n = int(self.headers.get("content-length") or 0)
        return self.rfile.read(n).decode("utf-8") if n else ""

    def fail(self, e):
        status = 400 if isinstance(e, (PermissionError, UnknownPrincipal, ValueError)) else 500
        log.warning("error: %s", traceback.format_exc())
        self.send(status, f"pysaml2 IdP error: {type(e).__name__}: {e}\n")

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        one = lambda k: q[k][0] if k in q else None  # noqa: E731
        try:
            if url.path == "/metadata":
                self.send(200, self.idp.metadata_xml(), "application/samlmetadata+xml")
            elif url.path == "/healthz":
                self.send(200, "ok\n")
            elif url.path == "/mode":
                self.send_json(200, self.idp.mode)
            elif url.path == "/last":
                self.send_json(200, self.idp.last)
            elif url.path == "/sso/redirect":
                if not one("SAMLRequest"):
                    return self.send(400, "SAMLRequest missing\n")
                page = self.idp.handle_authn_request(BINDING_HTTP_REDIRECT, one("SAMLRequest"), one("RelayState"),
                                                     raw_query=url.query, sigalg=one("SigAlg"),
                                                     signature=one("Signature"))
                self.send(200, page, "text/html; charset=utf-8")
            elif url.path == "/idp-initiated":
                if not one("sp"):
                    return self.send(400, "sp missing\n")
                page = self.idp.idp_initiated(one("sp"), one("relay_state"))
                self.send(200, page, "text/html; charset=utf-8")
            else:
                self.send(404, "not found\n")
        except Exception as e:
            self.fail(e)

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        try:
            raw = self.body()
            if url.path == "/sso/post":
                form = urllib.parse.parse_qs(raw, keep_blank_values=True)
                if "SAMLRequest" not in form:
                    return self.send(400, "SAMLRequest missing\n")
                relay = form["RelayState"][0] if "RelayState" in form else None
                page = self.idp.handle_authn_request(BINDING_HTTP_POST, form["SAMLRequest"][0], relay)
                self.send(200, page, "text/html; charset=utf-8")
            elif url.path == "/mode":
                change = json.loads(raw or "{}")
                unknown = set(change) - set(DEFAULT_MODE)
                if unknown:
                    return self.send(400, f"unknown mode keys {sorted(unknown)}\n")
                with self.idp.lock:
                    self.idp.mode.update(change)
                self.send_json(200, self.idp.mode)
            elif url.path == "/reset":
                with self.idp.lock:
                    self.idp.mode = copy.deepcopy(DEFAULT_MODE)
                self.send_json(200, self.idp.mode)
            elif url.path == "/sp":
                body = json.loads(raw or "{}")
                self.send_json(200, {"loaded": self.idp.load_sp(body.get("metadata_url"), body.get("metadata_xml"))})
            else:
                self.send(404, "not found\n")
        except Exception as e:
            self.fail(e)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--workdir", required=True, help="keys are generated here (openssl) unless present")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="[idp] %(levelname)s %(message)s")
    if not args.verbose:
        logging.getLogger("saml2").setLevel(logging.WARNING)
    os.makedirs(args.workdir, exist_ok=True)
    key, crt = generate_keys(args.workdir)
    httpd = ThreadingHTTPServer((args.host, args.port), Handler)
    base = f"http://{args.host}:{httpd.server_address[1]}"
    Handler.idp = Idp(base, key, crt)
    print(f"READY {base}", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
