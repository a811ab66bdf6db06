package policy

import (
	"bufio"
	"bytes"
	"strings"
)

// registryModule is the Go module whose version go.mod must pin to the registry the Dockerfile builds on.
const registryModule = "github.com/elastic/package-registry"

// DockerfileRegistryVersion returns the registry version a Dockerfile builds on: the value of
// `ARG PACKAGE_REGISTRY=<version>`, else the tag of `FROM <registry>/package-registry:<tag>`. ok is false when
// the Dockerfile pins neither (or the FROM tag is a build argument other than PACKAGE_REGISTRY).
func DockerfileRegistryVersion(dockerfile []byte) (version string, ok bool) {
	var fromTag string
	sc := bufio.NewScanner(bytes.NewReader(dockerfile))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "ARG":
			name, value, found := strings.Cut(fields[1], "=")
			if found && name == "PACKAGE_REGISTRY" {
				if v := strings.Trim(value, `"'`); v != "" {
					return v, true
				}
			}
		case "FROM":
			if fromTag == "" {
				fromTag = registryImageTag(fields[1:])
			}
		}
	}
	if fromTag == "" || strings.Contains(fromTag, "$") {
		return "", false
	}
	return fromTag, true
}

// registryImageTag returns the tag of a FROM instruction's image when the image is package-registry.
func registryImageTag(args []string) string {
	for _, a := range args {
		if strings.HasPrefix(a, "--") {
			continue // --platform=…
		}
		image, _, _ := strings.Cut(a, "@") // drop a digest
		slash := strings.LastIndex(image, "/")
		name, tag, found := strings.Cut(image[slash+1:], ":")
		if !found || name != "package-registry" {
			return ""
		}
		return tag
	}
	return ""
}

// GoModRegistryVersion returns the version go.mod requires of github.com/elastic/package-registry, in the
// single-line (`require m v1.2.3`) or block (`require ( … )`) form. ok is false when go.mod does not
// require it.
func GoModRegistryVersion(gomod []byte) (version string, ok bool) {
	inBlock := false
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "//")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		switch {
		case inBlock && fields[0] == ")":
			inBlock = false
			continue
		case inBlock:
		case fields[0] == "require(" || fields[0] == "require" && len(fields) == 2 && fields[1] == "(":
			inBlock = true
			continue
		case fields[0] == "require":
			fields = fields[1:]
		default:
			continue
		}
		if len(fields) >= 2 && strings.Trim(fields[0], `"`) == registryModule {
			return fields[1], true
		}
	}
	return "", false
}

// sameRegistryVersion compares two registry versions ignoring a leading "v".
func sameRegistryVersion(a, b string) bool {
	return strings.TrimPrefix(a, "v") == strings.TrimPrefix(b, "v")
}
