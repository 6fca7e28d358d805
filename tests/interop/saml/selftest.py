#!/usr/bin/env python3
"""Standalone check of idp.py without fedgate: a hand-made SP (keys from openssl, metadata,
AuthnRequests over Redirect signed with RSA-SHA256 and over POST) against a running idp.py; every
Response is checked with the xmlsec1 CLI (`--verify`, `--decrypt`), independently of pysaml2.

    selftest.py http://127.0.0.1:PORT WORKDIR      (run.sh selftest does this)
"""

import base64
import html
import json
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request
import uuid
import zlib
from datetime import datetime, timezone

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

IDP = sys.argv[1].rstrip("/")
WORK = sys.argv[2]
SP = "http://127.0.0.1:9/sso/saml/conn_selftest/metadata"
ACS = "http://127.0.0.1:9/sso/saml/conn_selftest/acs"
RESP_NS = "urn:oasis:names:tc:SAML:2.0:protocol:Response"
ASSERTION_NS = "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"
failures = []


def check(cond, what):
    print(("ok     " if cond else "FAILED ") + what)
    if not cond:
        failures.append(what)


def http(method, path, body=None, ctype="application/json"):
    req = urllib.request.Request(IDP + path, data=body.encode() if isinstance(body, str) else body, method=method)
    if body is not None:
        req.add_header("content-type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def sp_keys():
    key, crt = os.path.join(WORK, "sp.key.pem"), os.path.join(WORK, "sp.crt.pem")
    if not os.path.exists(key):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
                        "-subj", "/CN=selftest SP", "-keyout", key, "-out", crt], check=True, capture_output=True)
    return key, crt


def b64_cert(crt):
    return "".join(line for line in open(crt).read().splitlines() if "-----" not in line)


def sp_metadata(crt):
    c = b64_cert(crt)
    kd = lambda use: (f'<md:KeyDescriptor use="{use}"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{c}'  # noqa: E731
                      '</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>')
    return (f'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
            f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{SP}">'
            '<md:SPSSODescriptor AuthnRequestsSigned="true" WantAssertionsSigned="true" '
            'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
            f'{kd("signing")}{kd("encryption")}'
            '<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>'
            '<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
            f'Location="{ACS}" index="0" isDefault="true"/>'
            '</md:SPSSODescriptor></md:EntityDescriptor>')


def authn_request(dest):
    rid = "lgn_" + uuid.uuid4().hex
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    xml = ('<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
           'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" '
           f'ID="{rid}" Version="2.0" IssueInstant="{now}" Destination="{dest}" '
           f'AssertionConsumerServiceURL="{ACS}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST">'
           f'<saml:Issuer>{SP}</saml:Issuer>'
           '<samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" AllowCreate="true"/>'
           '</samlp:AuthnRequest>')
    return rid, xml


def redirect_query(xml, key, relay, tamper=False):
    deflated = zlib.compress(xml.encode())[2:-4]
    q = "SAMLRequest=" + urllib.parse.quote(base64.b64encode(deflated), safe="")
    q += "&RelayState=" + urllib.parse.quote(relay, safe="")
    q += "&SigAlg=" + urllib.parse.quote("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", safe="")
    pk = serialization.load_pem_private_key(open(key, "rb").read(), None)
    sig = pk.sign(q.encode(), padding.PKCS1v15(), hashes.SHA256())
    if tamper:
        q = q.replace("RelayState=", "RelayState=x")
    return q + "&Signature=" + urllib.parse.quote(base64.b64encode(sig), safe="")


def form_fields(page):
    fields = {}
    for m in re.finditer(r"<input\b[^>]*>", page, re.I):
        tag = m.group(0)
        name = re.search(r'name="([^"]*)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name:
            fields[name.group(1)] = html.unescape(value.group(1)) if value else ""
    action = re.search(r'<form\b[^>]*action="([^"]*)"', page, re.I)
    return (html.unescape(action.group(1)) if action else None), fields


def xmlsec(*args):
    r = subprocess.run(["xmlsec1", *args], capture_output=True, text=True)
    return r.returncode == 0, r.stdout + r.stderr


def verify(xml, crt, id_attr, xpath=None):
    path = os.path.join(WORK, "resp.xml")
    open(path, "w").write(xml)
    extra = ["--node-xpath", xpath] if xpath else []
    ok, out = xmlsec("--verify", "--pubkey-cert-pem", crt, "--id-attr:ID", id_attr, *extra, path)
    # xmlsec1 prints the X509 store's complaint about the self-signed certificate, but the key
    # given with --pubkey-cert-pem is trusted as such: "OK" is the verdict.
    return ok and "\nOK" in "\n" + out, out


def main():
    key, crt = sp_keys()
    idp_crt = os.path.join(WORK, "idp.crt.pem")
    st, md = http("GET", "/metadata")
    check(st == 200 and 'use="signing"' in md and "HTTP-Redirect" in md and "HTTP-POST" in md,
          "IdP metadata: signing key, Redirect and POST SSO")
    st, body = http("POST", "/sp", json.dumps({"metadata_xml": sp_metadata(crt)}))
    check(st == 200 and SP in body, f"SP metadata loaded ({st})")

    # 1. Redirect, signed query, signed Response (default mode)
    rid, xml = authn_request(IDP + "/sso/redirect")
    st, page = http("GET", "/sso/redirect?" + redirect_query(xml, key, "relay-1"))
    check(st == 200, f"Redirect SSO answered ({st}) {page[:200] if st != 200 else ''}")
    action, f = form_fields(page)
    check(action == ACS and f.get("RelayState") == "relay-1" and "SAMLResponse" in f, "auto-POST form to the ACS")
    resp = base64.b64decode(f["SAMLResponse"]).decode()
    last = json.loads(http("GET", "/last")[1])
    check(last.get("raw_signature_valid") is True, f"raw-query signature verified: {last.get('raw_signature_detail')}")
    check(f'InResponseTo="{rid}"' in resp and f'Destination="{ACS}"' in resp, "InResponseTo + Destination")
    for needle in ('Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"', "alice-7f3a9c2e",
                   f"<ns1:Audience>{SP}</ns1:Audience>" if "<ns1:Audience>" in resp else SP,
                   'Name="groups"', "engineering", "admins", 'Name="email"', f'Recipient="{ACS}"',
                   "rsa-sha256", "xmlenc#sha256"):
        check(needle in resp, f"Response contains {needle}")
    ok, out = verify(resp, idp_crt, RESP_NS)
    check(ok, "xmlsec1 --verify: Response signature")
    print(resp[:3000] if os.environ.get("SELFTEST_SHOW") else "", end="")

    # 2. tampered Redirect signature -> 400
    rid, xml = authn_request(IDP + "/sso/redirect")
    st, page = http("GET", "/sso/redirect?" + redirect_query(xml, key, "relay-2", tamper=True))
    check(st == 400 and "signature" in page.lower(), f"tampered Redirect signature refused ({st})")

    # 3. POST binding, signed Assertion only
    http("POST", "/mode", json.dumps({"sign_response": False, "sign_assertion": True}))
    rid, xml = authn_request(IDP + "/sso/post")
    form = urllib.parse.urlencode({"SAMLRequest": base64.b64encode(xml.encode()).decode(), "RelayState": "r3"})
    st, page = http("POST", "/sso/post", form, "application/x-www-form-urlencoded")
    check(st == 200, f"POST SSO answered ({st}) {page[:300] if st != 200 else ''}")
    _, f = form_fields(page)
    resp = base64.b64decode(f["SAMLResponse"]).decode()
    check(resp.count("SignatureValue>") == 2, "one signature (in the Assertion)")
    ok, out = verify(resp, idp_crt, ASSERTION_NS)
    check(ok, "xmlsec1 --verify: Assertion signature")

    # 4. both signed, Assertion encrypted (AES-256-CBC, RSA-OAEP), decrypt with the SP key
    for enc in ("aes256-cbc", "aes128-gcm", "tripledes-cbc"):
        http("POST", "/mode", json.dumps({"sign_response": True, "sign_assertion": True, "encrypt_assertion": True,
                                          "enc_alg": enc}))
        rid, xml = authn_request(IDP + "/sso/redirect")
        st, page = http("GET", "/sso/redirect?" + redirect_query(xml, key, "r4"))
        check(st == 200, f"encrypted ({enc}) answered ({st}) {page[:300] if st != 200 else ''}")
        if st != 200:
            continue
        _, f = form_fields(page)
        resp = base64.b64decode(f["SAMLResponse"]).decode()
        check("EncryptedAssertion" in resp and "alice-7f3a9c2e" not in resp and enc in resp,
              f"Assertion encrypted with {enc}")
        ok, out = verify(resp, idp_crt, RESP_NS)
        check(ok, f"xmlsec1 --verify: Response signature over the EncryptedAssertion ({enc})")
        path = os.path.join(WORK, "enc.xml")
        open(path, "w").write(resp)
        r = subprocess.run(["xmlsec1", "--decrypt", "--privkey-pem", key, path], capture_output=True, text=True)
        ok, out = r.returncode == 0, r.stdout
        check(ok and "alice-7f3a9c2e" in out, f"xmlsec1 --decrypt with the SP key ({enc})")
        if ok:
            ok2, _ = verify(out, idp_crt, ASSERTION_NS,
                            "//*[local-name()='Assertion']/*[local-name()='Signature']")
            check(ok2, f"xmlsec1 --verify: decrypted Assertion's own signature ({enc})")

    # 5. IdP-initiated
    http("POST", "/reset", "{}")
    st, page = http("GET", "/idp-initiated?sp=" + urllib.parse.quote(SP, safe="") + "&relay_state=x")
    _, f = form_fields(page)
    resp = base64.b64decode(f.get("SAMLResponse", "")).decode() if st == 200 else ""
    check(st == 200 and "InResponseTo" not in resp and f'Destination="{ACS}"' in resp, f"IdP-initiated ({st})")
    ok, _ = verify(resp, idp_crt, RESP_NS)
    check(ok, "xmlsec1 --verify: IdP-initiated Response")

    print(f"selftest: {len(failures)} failed" if failures else "selftest: all ok")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
