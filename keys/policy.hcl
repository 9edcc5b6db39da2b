# ecert's service policy: least privilege over the transit engine at "{mount}".
# The service may create keys (never exportable), read public keys, sign, verify, rotate,
# encrypt, decrypt and HMAC. It may not export, back up, delete or reconfigure keys.

path "{mount}/keys/+" {
  capabilities = ["create", "read", "update"]
  denied_parameters = {
    "exportable" = []
    "allow_plaintext_backup" = []
  }
}
path "{mount}/keys/+/rotate" { capabilities = ["update"] }
path "{mount}/sign/+" { capabilities = ["update"] }
path "{mount}/sign/+/+" { capabilities = ["update"] }
path "{mount}/verify/+" { capabilities = ["update"] }
path "{mount}/verify/+/+" { capabilities = ["update"] }
path "{mount}/encrypt/+" { capabilities = ["update"] }
path "{mount}/decrypt/+" { capabilities = ["update"] }
path "{mount}/hmac/+" { capabilities = ["update"] }
path "{mount}/hmac/+/+" { capabilities = ["update"] }

path "auth/token/lookup-self" { capabilities = ["read"] }
path "auth/token/renew-self" { capabilities = ["update"] }
