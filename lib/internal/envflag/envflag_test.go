package envflag

import "testing"

func TestTrue(t *testing.T) {
	for v, want := range map[string]bool{"1": true, " TRUE ": true, "yes": true, "on": true, "": false, "0": false, "off": false} {
		if True(v) != want {
			t.Errorf("True(%q) = %v", v, !want)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		v             string
		def, want, ok bool
	}{{"", true, true, true}, {" ", false, false, true}, {"On", false, true, true}, {"no", true, false, true}, {"maybe", true, false, false}} {
		if got, ok := Parse(tc.v, tc.def); got != tc.want || ok != tc.ok {
			t.Errorf("Parse(%q, %v) = %v, %v", tc.v, tc.def, got, ok)
		}
	}
}

func TestFalse(t *testing.T) {
	for v, want := range map[string]bool{"0": true, " False ": true, "no": true, "off": true, "": false, "1": false, "maybe": false} {
		if False(v) != want {
			t.Errorf("False(%q) = %v", v, !want)
		}
	}
}
