# One node of a 3-node OpenBao raft cluster (node_id and addresses differ per node).
# Production: TLS on the listener, and auto-unseal through a KMS or HSM (see docs/deployment.md).
ui            = false
api_addr      = "http://openbao-3:8200"
cluster_addr  = "http://openbao-3:8201"

storage "raft" {
  path    = "/openbao/data"
  node_id = "openbao-3"
  retry_join { leader_api_addr = "http://openbao-1:8200" }
  retry_join { leader_api_addr = "http://openbao-2:8200" }
}

listener "tcp" {
  address     = "0.0.0.0:8200"
  tls_disable = true   # compose demo only: terminate TLS here in production (tls_cert_file, tls_key_file)
}

# Auto-unseal: uncomment one and remove the Shamir unseal step.
# seal "pkcs11" { lib = "/usr/lib/softhsm/libsofthsm2.so" slot = "0" pin = "env:BAO_HSM_PIN" key_label = "ecert-unseal" }
# seal "awskms" { region = "cn-north-1" kms_key_id = "alias/ecert-unseal" }
# seal "transit" { address = "https://unseal-vault:8200" key_name = "ecert-unseal" mount_path = "transit/" }
