// Package acme obtains and renews certificates from an ACME CA for a
// cluster of replicas that share one store, and serves them.
//
// One replica, the elected leader, places every order; every replica
// answers every challenge and serves every certificate. All state lives in
// the store under <prefix>/acme/, one key per item (see docs/kv-layout.md):
//
//	acme/accounts/<ca>/<email>          AccountRecord, the account key sealed
//	acme/certs/<shard>/<main-domain>    CertRecord, the private key sealed
//	acme/challenges/http-01/<token>     ChallengeRecord (key authorization)
//	acme/challenges/tls-alpn-01/<name>  ChallengeRecord
//	acme/orders/<main-domain>           OrderRecord: an order in flight
//	acme/state/<main-domain>            DomainState: failures and backoff
//	acme/requests/<name>                RequestRecord: an on-demand request
//
// The shard is one hex digit of the main domain's hash (CertShard). Every
// write the leader makes is fenced by its term. Replicas follow each folder
// and each certificate shard with its own watch (Cache) and never read the
// store in a handshake.
package acme
