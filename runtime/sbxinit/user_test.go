package sbxinit

import (
	"reflect"
	"strings"
	"testing"
)

func TestResolveUser(t *testing.T) {
	const passwd = "root:x:0:0:root:/root:/bin/sh\n# comment\nbroken line\napp:x:1000:1000::/home/app:/bin/sh\nnohome:x:1001:1001:::/bin/sh\n"
	const group = "root:x:0:\napp:x:1000:\nstaff:x:50:app,other\nwheel:x:10:app\nbad:x:notanumber:app\n"
	for _, tc := range []struct {
		user User
		want Credentials
		err  string
	}{
		{User{}, Credentials{IDs{0, 0, []uint32{0}}, "/root"}, ""},
		{User{Spec: "app"}, Credentials{IDs{1000, 1000, []uint32{1000, 50, 10}}, "/home/app"}, ""},
		{User{Spec: "1000"}, Credentials{IDs{1000, 1000, []uint32{1000, 50, 10}}, "/home/app"}, ""},
		{User{Spec: "app:staff"}, Credentials{IDs{1000, 50, []uint32{50}}, "/home/app"}, ""},
		{User{Spec: "4242:4343"}, Credentials{IDs{4242, 4343, []uint32{4343}}, "/"}, ""},
		{User{Spec: "nohome"}, Credentials{IDs{1001, 1001, []uint32{1001}}, "/"}, ""},
		{User{Spec: "5000"}, Credentials{IDs{5000, 0, []uint32{0}}, "/"}, ""},
		{User{Spec: "1000:5"}, Credentials{IDs{1000, 5, []uint32{5}}, "/home/app"}, ""},
		{User{IDs: &IDs{UID: 1000, GID: 7}}, Credentials{IDs{1000, 7, []uint32{7}}, "/home/app"}, ""},
		{User{Spec: "ghost"}, Credentials{}, `user "ghost" not found in the image's /etc/passwd`},
		{User{Spec: "app:ghosts"}, Credentials{}, `group "ghosts" not found in the image's /etc/group`},
	} {
		got, err := ResolveUser(tc.user, strings.NewReader(passwd), strings.NewReader(group))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v: error %v, want %q", tc.user, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%+v: %+v, %v; want %+v", tc.user, got, err, tc.want)
		}
	}
	// No passwd file at all (distroless images may have none): numeric users only.
	if got, err := ResolveUser(User{Spec: "65532"}, nil, nil); err != nil || got.UID != 65532 || got.GID != 0 {
		t.Errorf("numeric user without passwd: %+v %v", got, err)
	}
}
