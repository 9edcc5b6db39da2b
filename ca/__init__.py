"""The certificate authority: root and issuing CAs, department seal certificates, CRL, OCSP, TSA.

Every private key lives in Vault (:mod:`keys`); this package only builds the to-be-signed
structures and hands a remote key object to ``cryptography``'s builders.
"""
