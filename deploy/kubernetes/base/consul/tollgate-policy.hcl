# The least a tollgate token needs, for replicas and the storeconfig Job
# alike. Everything tollgate keeps lives under one prefix ("tollgate", the
# --prefix of the Deployment and the Job): the configuration, the leader
# lock, the node registry and the ACME state. Change the prefix here with
# it, keeping the trailing slash so that "tollgate-other/" is not covered.
key_prefix "tollgate/" {
  policy = "write"
}

# Locks (the leader, storeconfig's) are Consul sessions, which belong to
# the node of the agent that creates them: tollgate talks to the servers
# of the StatefulSet "consul", whose node names are consul-0, consul-1, ...
# by ordinal (-node=consul-$(POD_INDEX)), also under an overlay's
# namePrefix. A waiting replica may end a silent leader's session on
# another of them. With client agents, or another Consul, name their
# nodes here instead: session_prefix "" would cover any node names, but
# would also let the token end other applications' sessions in a shared
# Consul.
session_prefix "consul-" {
  policy = "write"
}
