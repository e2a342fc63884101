// Package openapitest proves the OpenAPI document with tools we did not
// write, against real `accounts serve` processes: the Go client that
// oapi-codegen generates from it runs the walkthrough; the code samples of
// the document run; Spectral lints it; Stoplight Prism, as a validating
// proxy, sees the README's walkthrough through; and headless Chromium
// renders the reference page.
//
// The Node tools come from tools/npm (npm ci --prefix tools/npm), Chromium
// from Debian's chromium package. Without them the tests skip, saying how
// to install them; in CI (CI set) they fail instead.
package openapitest
