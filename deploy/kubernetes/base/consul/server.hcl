# Configuration of the three Consul servers of the StatefulSet "consul".
# Each server's node name (-node) and advertised address (-advertise) are
# given on its command line.

datacenter       = "dc1"
server           = true
bootstrap_expect = 3
data_dir         = "/consul/data"
client_addr      = "0.0.0.0"
bind_addr        = "0.0.0.0"

# The servers find each other through the headless Service consul-server,
# which publishes their addresses before they are ready.
retry_join = [
  "consul-0.consul-server",
  "consul-1.consul-server",
  "consul-2.consul-server",
]

# A server that stops stays a Raft peer: a rolling restart must not shrink
# the quorum.
leave_on_terminate = false

disable_update_check = true

ui_config {
  enabled = true
}

# Every request needs a token; tollgate's may only touch its own prefix
# (tollgate-policy.hcl). After the first start, bootstrap the ACL system
# as README.md describes.
acl {
  enabled                  = true
  default_policy           = "deny"
  enable_token_persistence = true
}
