// Command certgen writes self-signed ECDSA P-256 certificates for the
// benchmarks (bench/proxy.sh): one for every name given and, with -extra N,
// N more for distinct names host-00001.<first name>, …. Each goes to
// DIR/NAME.crt and DIR/NAME.key; one line "NAME CERTFILE KEYFILE" per
// certificate is printed.
//
//	certgen -dir /tmp/certs -extra 10000 bench.test
package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"log"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

func main() {
	dir := flag.String("dir", ".", "directory the files are written to")
	extra := flag.Int("extra", 0, "certificates for distinct made-up names, besides the named ones")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: certgen [-dir DIR] [-extra N] NAME...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		log.Fatal(err)
	}
	names := flag.Args()
	for i := 1; i <= *extra; i++ {
		names = append(names, fmt.Sprintf("host-%05d.%s", i, flag.Arg(0)))
	}
	out := bufio.NewWriter(os.Stdout)
	for _, name := range names {
		certFile, keyFile := filepath.Join(*dir, name+".crt"), filepath.Join(*dir, name+".key")
		if err := write(name, certFile, keyFile); err != nil {
			log.Fatalf("%s: %v", name, err)
		}
		fmt.Fprintln(out, name, certFile, keyFile)
	}
	if err := out.Flush(); err != nil {
		log.Fatal(err)
	}
}

func write(name, certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(30 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600)
}
