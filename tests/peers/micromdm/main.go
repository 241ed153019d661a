// micromdm-scepserver: micromdm/scep 2.1.0's example server (Debian's
// golang-github-micromdm-scep-dev ships it as examples/scepserver.go; the package has no cmd/)
// reduced to what certconn's tests use, with two changes:
//
//   - The CSR signer is behind a mutex. 2.1.0's file depot reads and rewrites its serial file
//     and index.txt without a lock, so concurrent enrollments race (duplicate serials, torn
//     index lines; fixed upstream in 2.2.0). The interop test and scep_bench run concurrent
//     enrollments, and the benchmark must compare against a server that issues correctly.
//   - It listens on -addr (loopback, port 0 by default) and writes the port it got to
//     -portfile, so tests never collide on a fixed port or listen on all interfaces.
//
// Everything else (CA in the file depot, the CA key as the RA key, the static challenge
// middleware, the service, transport and logging) is micromdm's code, unchanged.
//
//	micromdm-scepserver ca -init -depot DIR [-keySize 2048] [-organization O]
//	micromdm-scepserver -depot DIR -challenge PW [-addr 127.0.0.1:0] [-portfile F]
package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	scepdepot "github.com/micromdm/scep/v2/depot"
	"github.com/micromdm/scep/v2/depot/file"
	"github.com/micromdm/scep/v2/scep"
	scepserver "github.com/micromdm/scep/v2/server"

	"github.com/go-kit/kit/log"
	"github.com/go-kit/kit/log/level"
)

// lockedSigner serialises SignCSR: see the comment at the top.
type lockedSigner struct {
	mu   sync.Mutex
	next scepserver.CSRSigner
}

func (s *lockedSigner) SignCSR(m *scep.CSRReqMessage) (*x509.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next.SignCSR(m)
}

func main() {
	if len(os.Args) >= 2 && os.Args[1] == "ca" {
		os.Exit(caMain(flag.NewFlagSet("ca", flag.ExitOnError)))
	}
	var (
		flAddr              = flag.String("addr", "127.0.0.1:0", "address to listen on")
		flPortFile          = flag.String("portfile", "", "write the port listened on to this file")
		flDepotPath         = flag.String("depot", "depot", "path to ca folder")
		flCAPass            = flag.String("capass", "", "passwd for the ca.key")
		flClDuration        = flag.String("crtvalid", "365", "validity for new client certificates in days")
		flClAllowRenewal    = flag.String("allowrenew", "14", "do not allow renewal until n days before expiry, set to 0 to always allow")
		flChallengePassword = flag.String("challenge", "", "enforce a challenge password")
		flDebug             = flag.Bool("debug", false, "enable debug logging")
	)
	flag.Parse()

	logger := log.NewLogfmtLogger(os.Stderr)
	if !*flDebug {
		logger = level.NewFilter(logger, level.AllowInfo())
	}
	logger = log.With(logger, "ts", log.DefaultTimestampUTC)
	lginfo := level.Info(logger)
	fail := func(kv ...interface{}) {
		lginfo.Log(kv...)
		os.Exit(1)
	}

	depot, err := file.NewFileDepot(*flDepotPath)
	if err != nil {
		fail("err", err)
	}
	allowRenewal, err := strconv.Atoi(*flClAllowRenewal)
	if err != nil {
		fail("err", err, "msg", "No valid number for allowed renewal time")
	}
	clientValidity, err := strconv.Atoi(*flClDuration)
	if err != nil {
		fail("err", err, "msg", "No valid number for client cert validity")
	}

	var svc scepserver.Service
	{
		crts, key, err := depot.CA([]byte(*flCAPass))
		if err != nil {
			fail("err", err)
		}
		if len(crts) < 1 {
			fail("err", "missing CA certificate")
		}
		var signer scepserver.CSRSigner = &lockedSigner{next: scepdepot.NewSigner(
			depot,
			scepdepot.WithAllowRenewalDays(allowRenewal),
			scepdepot.WithValidityDays(clientValidity),
			scepdepot.WithCAPass(*flCAPass),
		)}
		if *flChallengePassword != "" {
			signer = scepserver.ChallengeMiddleware(*flChallengePassword, signer)
		}
		svc, err = scepserver.NewService(crts[0], key, signer, scepserver.WithLogger(logger))
		if err != nil {
			fail("err", err)
		}
		svc = scepserver.NewLoggingService(log.With(lginfo, "component", "scep_service"), svc)
	}

	e := scepserver.MakeServerEndpoints(svc)
	e.GetEndpoint = scepserver.EndpointLoggingMiddleware(lginfo)(e.GetEndpoint)
	e.PostEndpoint = scepserver.EndpointLoggingMiddleware(lginfo)(e.PostEndpoint)
	h := scepserver.MakeHTTPHandler(e, svc, log.With(lginfo, "component", "http"))

	ln, err := net.Listen("tcp", *flAddr)
	if err != nil {
		fail("err", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if *flPortFile != "" {
		// written to a temporary name and renamed: a reader never sees half a number
		tmp := *flPortFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(strconv.Itoa(port)+"\n"), 0644); err != nil {
			fail("err", err)
		}
		if err := os.Rename(tmp, *flPortFile); err != nil {
			fail("err", err)
		}
	}
	errs := make(chan error, 2)
	go func() {
		lginfo.Log("transport", "http", "address", ln.Addr().String(), "msg", "listening")
		errs <- http.Serve(ln, h)
	}()
	go func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
		errs <- fmt.Errorf("%s", <-c)
	}()
	lginfo.Log("terminated", <-errs)
}

func caMain(cmd *flag.FlagSet) int {
	var (
		flDepotPath = cmd.String("depot", "depot", "path to ca folder")
		flInit      = cmd.Bool("init", false, "create a new CA")
		flYears     = cmd.Int("years", 10, "default CA years")
		flKeySize   = cmd.Int("keySize", 4096, "rsa key size")
		flOrg       = cmd.String("organization", "scep-ca", "organization for CA cert")
		flOrgUnit   = cmd.String("organizational_unit", "SCEP CA", "organizational unit (OU) for CA cert")
		flPassword  = cmd.String("key-password", "", "password to store rsa key")
		flCountry   = cmd.String("country", "US", "country for CA cert")
	)
	cmd.Parse(os.Args[2:])
	if *flInit {
		key, err := createKey(*flKeySize, []byte(*flPassword), *flDepotPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := createCertificateAuthority(key, *flYears, *flOrg, *flOrgUnit, *flCountry, *flDepotPath); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

// create a key, save it to depot and return it for further usage (micromdm's code).
func createKey(bits int, password []byte, depot string) (*rsa.PrivateKey, error) {
	if err := os.MkdirAll(depot, 0755); err != nil {
		return nil, err
	}
	name := filepath.Join(depot, "ca.key")
	file, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0400)
	if err != nil {
		return nil, err
	}
	defer file.Close()

	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, err
	}
	privPEMBlock, err := x509.EncryptPEMBlock(
		rand.Reader,
		"RSA PRIVATE KEY",
		x509.MarshalPKCS1PrivateKey(key),
		password,
		x509.PEMCipher3DES,
	)
	if err != nil {
		return nil, err
	}
	if err := pem.Encode(file, privPEMBlock); err != nil {
		os.Remove(name)
		return nil, err
	}
	return key, nil
}

func createCertificateAuthority(key *rsa.PrivateKey, years int, organization string, organizationalUnit string, country string, depot string) error {
	cert := scepdepot.NewCACert(
		scepdepot.WithYears(years),
		scepdepot.WithOrganization(organization),
		scepdepot.WithOrganizationalUnit(organizationalUnit),
		scepdepot.WithCountry(country),
	)
	crtBytes, err := cert.SelfSign(rand.Reader, &key.PublicKey, key)
	if err != nil {
		return err
	}
	name := filepath.Join(depot, "ca.pem")
	file, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0400)
	if err != nil {
		return err
	}
	defer file.Close()
	if _, err := file.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: crtBytes})); err != nil {
		os.Remove(name)
		return err
	}
	return nil
}
