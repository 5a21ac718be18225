package lang

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	hcljson "github.com/hashicorp/hcl/v2/json"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Variable values come from these sources, each overriding the ones before it:
//
//  1. the variable's default;
//  2. DotEnvFile, the .env file of the Sandboxfile's directory;
//  3. the environment variables SBX_VAR_<name>;
//  4. the AutoVarFilePattern files of the Sandboxfile's directory, in lexical order;
//  5. --var-file files (WithVarFiles), in order;
//  6. --var name=value (WithVars).
//
// From the environment, .env and --var, a string (or untyped) variable takes the raw text; any
// other type is parsed as an HCL expression (n=3, l=["a","b"]), as Terraform does.

// AutoVarFilePattern matches the variable files read automatically from the Sandboxfile's
// directory, in lexical order.
const AutoVarFilePattern = "*.auto.sbxvars.hcl"

// DotEnvFile is the dotenv file read from the Sandboxfile's directory, when the Sandboxfile
// declares variables, with the lowest precedence after defaults: so the .env a project keeps
// for Compose can feed sbx too. A line SBX_VAR_name=value or name=value sets var.name
// (SBX_VAR_ wins when both are there); Compose's syntax applies (export, # comments, 'literal'
// and "escaped\n" quoting, values over several lines in double quotes, no ${} expansion).
// Plain names no variable is declared for are ignored, as the file is shared with other tools;
// an SBX_VAR_ name that matches no variable gets a warning. The file must lie inside the
// project directory after following symlinks.
const DotEnvFile = ".env"

type variable struct {
	name        string
	block       *hcl.Block
	typ         cty.Type
	defaults    *typeexpr.Defaults
	sensitive   bool
	validations []validation
	value       cty.Value // final, converted and marked; DynamicVal when invalid
	source      varSource
	broken      bool // the declaration itself is invalid; do not report a missing value too
	failed      bool // a given value was invalid and reported; ignore the variable from now on
}

type validation struct {
	cond, msg hcl.Expression
}

// varSource is one value given for a variable and where it came from.
type varSource struct {
	val  cty.Value
	from string     // "from --var", "from file x.hcl", ...
	rng  *hcl.Range // where the value was written, when it was written in a file
}

func (l *loader) evalVariables() {
	for _, v := range l.varOrder {
		l.declareVariable(v)
	}
	// Sources in increasing precedence; a later one replaces an earlier one.
	l.readDotEnv()
	for _, v := range l.varOrder {
		raw, ok := l.env["SBX_VAR_"+v.name]
		if !ok {
			continue
		}
		from := "from environment variable SBX_VAR_" + v.name
		if val, ok := l.parseRaw(v, raw, from, nil); ok {
			v.source = varSource{val: val, from: from}
		} else {
			v.failed = true
		}
	}
	autos, _ := filepath.Glob(filepath.Join(l.cfg.Dir, AutoVarFilePattern))
	sort.Strings(autos)
	for _, f := range autos {
		l.readVarFile(f, filepath.Base(f), true)
	}
	for _, f := range l.opts.varFiles {
		p := f
		if !filepath.IsAbs(p) {
			p = filepath.Join(l.opts.cwd, p)
		}
		l.readVarFile(p, f, false)
	}
	for _, name := range sortedKeys(l.opts.vars) {
		v, ok := l.vars[name]
		if !ok {
			l.errorf(nil, "Value for undeclared variable", "--var %s=...: no variable %q is declared in the Sandboxfile.%s Declare it with a variable block, or remove the option.", name, name, suggest(name, sortedKeys(l.vars)))
			continue
		}
		if val, ok := l.parseRaw(v, l.opts.vars[name], "from --var", nil); ok {
			v.source = varSource{val: val, from: "from --var"}
		} else {
			v.failed = true
		}
	}
	for _, v := range l.varOrder {
		l.finishVariable(v)
	}
}

func (l *loader) declareVariable(v *variable) {
	v.typ = cty.DynamicPseudoType
	v.value = cty.DynamicVal
	c, diags := v.block.Body.Content(variableSchema())
	l.diags = append(l.diags, diags...)
	if a := c.Attributes["type"]; a != nil {
		ty, defaults, diags := typeexpr.TypeConstraintWithDefaults(a.Expr)
		l.diags = append(l.diags, diags...)
		if !diags.HasErrors() {
			v.typ, v.defaults = ty, defaults
		} else {
			v.broken = true
		}
	}
	if a := c.Attributes["description"]; a != nil {
		l.literal(a, cty.String)
	}
	if a := c.Attributes["sensitive"]; a != nil {
		if b, ok := l.literal(a, cty.Bool); ok {
			v.sensitive = b.True()
		}
	}
	if a := c.Attributes["default"]; a != nil {
		val, ok := l.literal(a, cty.DynamicPseudoType)
		switch {
		case !ok:
			v.broken = true
		case !val.IsNull():
			v.source = varSource{val: val, from: "from the default", rng: a.Expr.Range().Ptr()}
		}
	}
	for _, b := range c.Blocks {
		vc, diags := b.Body.Content(validationSchema())
		l.diags = append(l.diags, diags...)
		if vc.Attributes["condition"] == nil || vc.Attributes["error_message"] == nil {
			continue
		}
		v.validations = append(v.validations, validation{
			cond: vc.Attributes["condition"].Expr,
			msg:  vc.Attributes["error_message"].Expr,
		})
	}
}

// literal evaluates an attribute that may use functions but no references.
func (l *loader) literal(a *hcl.Attribute, ty cty.Type) (cty.Value, bool) {
	if len(a.Expr.Variables()) > 0 {
		l.errorf(a.Expr.Range().Ptr(), "Variables not allowed", "The %s of a variable must be a literal value; it cannot refer to other values.", a.Name)
		return cty.NilVal, false
	}
	val, diags := a.Expr.Value(&hcl.EvalContext{Functions: l.funcs})
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() || !val.IsWhollyKnown() {
		return cty.NilVal, false
	}
	out, err := convert.Convert(val, ty)
	if err != nil || (ty != cty.DynamicPseudoType && out.IsNull()) {
		msg := "null"
		if err != nil {
			msg = err.Error()
		}
		l.errorf(a.Expr.Range().Ptr(), "Incorrect attribute value type", "Inappropriate value for attribute %q: %s.", a.Name, msg)
		return cty.NilVal, false
	}
	return out, true
}

// parseRaw turns a raw string from the command line or the environment into a value: the
// string itself for string (or untyped) variables, an HCL expression otherwise.
// The error points at subject, or at the variable's declaration when it is nil.
func (l *loader) parseRaw(v *variable, raw, from string, subject *hcl.Range) (cty.Value, bool) {
	if v.typ == cty.String || v.typ == cty.DynamicPseudoType {
		return cty.StringVal(raw), true
	}
	expr, diags := hclsyntax.ParseExpression([]byte(raw), "<value for var."+v.name+">", hcl.InitialPos)
	if !diags.HasErrors() {
		var val cty.Value
		val, diags = expr.Value(nil)
		if !diags.HasErrors() {
			return val, true
		}
	}
	if subject == nil {
		subject = v.block.DefRange.Ptr()
	}
	l.errorf(subject, "Invalid value for variable", "The value of var.%s %s is not a valid %s expression: %s", v.name, from, typeexpr.TypeString(v.typ), diags[0].Detail)
	return cty.NilVal, false
}

// readVarFile applies a variable file: HCL "name = value" lines, or a JSON object when the
// name ends in .json.
func (l *loader) readVarFile(path, display string, auto bool) {
	l.cfg.VarFiles = append(l.cfg.VarFiles, path)
	src, err := os.ReadFile(path)
	if err != nil {
		l.errorf(nil, "Cannot read variable file", "%s. Check the --var-file path.", err)
		return
	}
	var file *hcl.File
	var diags hcl.Diagnostics
	if strings.HasSuffix(path, ".json") {
		file, diags = hcljson.Parse(src, path)
	} else {
		file, diags = hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	}
	l.diags = append(l.diags, diags...)
	if file == nil {
		return
	}
	l.cfg.Sources[path] = file
	if diags.HasErrors() {
		return
	}
	attrs, diags := file.Body.JustAttributes()
	l.diags = append(l.diags, diags...)
	from := "from file " + display
	for _, a := range sortedAttrs(attrs) {
		v, ok := l.vars[a.Name]
		if !ok {
			hint := suggest(a.Name, sortedKeys(l.vars))
			if auto {
				l.warnf(&a.NameRange, "Value for undeclared variable", "%s sets %q, but the Sandboxfile declares no such variable.%s The value is ignored.", display, a.Name, hint)
			} else {
				l.errorf(&a.NameRange, "Value for undeclared variable", "%s sets %q, but the Sandboxfile declares no such variable.%s Declare it with a variable block, or remove it from the file.", display, a.Name, hint)
			}
			continue
		}
		val, diags := a.Expr.Value(nil)
		l.diags = append(l.diags, diags...)
		if diags.HasErrors() {
			v.failed = true
			continue
		}
		v.source = varSource{val: val, from: from, rng: a.Expr.Range().Ptr()}
	}
}

// finishVariable converts the winning value, marks it and runs the validation rules.
func (l *loader) finishVariable(v *variable) {
	src := v.source
	if v.failed {
		return
	}
	if src.val == cty.NilVal || src.val.IsNull() {
		if v.broken {
			return
		}
		l.errorf(v.block.DefRange.Ptr(), "No value for required variable", "var.%s has no default and no value was given. Set it with --var %s=VALUE, a --var-file, a %s file, or the environment variable SBX_VAR_%s.", v.name, v.name, AutoVarFilePattern, v.name)
		return
	}
	subject := src.rng
	if subject == nil {
		subject = v.block.DefRange.Ptr()
	}
	val := src.val
	if v.defaults != nil {
		val = v.defaults.Apply(val)
	}
	out, err := convert.Convert(val, v.typ)
	if err != nil {
		l.errorf(subject, "Invalid value for variable", "Unsuitable value for var.%s (%s): %s. The variable's type is %s.", v.name, src.from, err, typeexpr.TypeString(v.typ))
		return
	}
	if v.sensitive {
		l.collectSecrets(out)
		out = out.Mark(sensitiveMark)
	}
	ok := true
	for _, rule := range v.validations {
		if !l.validate(v, out, rule) {
			ok = false
		}
	}
	if ok {
		v.value = out
	}
}

func (l *loader) validate(v *variable, val cty.Value, rule validation) bool {
	for _, t := range append(rule.cond.Variables(), rule.msg.Variables()...) {
		if t.RootName() != "var" || len(t) < 2 || attrName(t[1]) != v.name {
			l.errorf(t.SourceRange().Ptr(), "Invalid reference in variable validation", "The condition of var.%s may only refer to var.%s itself.", v.name, v.name)
			return true
		}
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{v.name: val})},
		Functions: l.funcs,
	}
	res, diags := rule.cond.Value(ctx)
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		return false
	}
	res, _ = res.UnmarkDeep()
	if !res.IsKnown() {
		return true
	}
	b, err := convert.Convert(res, cty.Bool)
	if err != nil || b.IsNull() {
		l.errorf(rule.cond.Range().Ptr(), "Invalid validation condition", "The condition must be true or false.")
		return false
	}
	if b.True() {
		return true
	}
	msg := "The value is not valid."
	if m, diags := rule.msg.Value(ctx); !diags.HasErrors() {
		m, _ = m.UnmarkDeep()
		if s, err := convert.Convert(m, cty.String); err == nil && s.IsKnown() && !s.IsNull() {
			msg = s.AsString()
		}
	} else {
		l.diags = append(l.diags, diags...)
	}
	l.errorf(rule.cond.Range().Ptr(), "Invalid value for variable", "%s\n\nThe value of var.%s (%s) failed this validation rule.", msg, v.name, v.source.from)
	return false
}

func (l *loader) varObject() cty.Value {
	m := make(map[string]cty.Value, len(l.varOrder))
	for _, v := range l.varOrder {
		m[v.name] = v.value
	}
	return cty.ObjectVal(m)
}

func attrName(step hcl.Traverser) string {
	switch s := step.(type) {
	case hcl.TraverseAttr:
		return s.Name
	case hcl.TraverseIndex:
		if s.Key.Type() == cty.String && s.Key.IsKnown() && !s.Key.IsNull() {
			return s.Key.AsString()
		}
	}
	return ""
}

// collectSecrets remembers the strings inside a sensitive value, so that diagnostics quoting
// them (a function's error, an invalid image) can be scrubbed. Very short strings are left
// out: replacing them would garble the messages more than it would protect.
func (l *loader) collectSecrets(v cty.Value) {
	_ = cty.Walk(v, func(_ cty.Path, v cty.Value) (bool, error) {
		if v.Type() == cty.String && v.IsKnown() && !v.IsNull() && len(v.AsString()) >= 4 {
			l.secrets = append(l.secrets, v.AsString())
		}
		return true, nil
	})
}

// scrubSecrets replaces the values of sensitive variables in diagnostic texts.
func (l *loader) scrubSecrets() {
	if len(l.secrets) == 0 {
		return
	}
	pairs := make([]string, 0, 2*len(l.secrets))
	for _, s := range l.secrets {
		pairs = append(pairs, s, "(sensitive value)")
	}
	r := strings.NewReplacer(pairs...)
	for _, d := range l.diags {
		d.Summary, d.Detail = r.Replace(d.Summary), r.Replace(d.Detail)
	}
}

// readDotEnv applies DotEnvFile, when there are variables and the file exists.
func (l *loader) readDotEnv() {
	if len(l.varOrder) == 0 {
		return
	}
	p := filepath.Join(l.cfg.Dir, DotEnvFile)
	if _, err := os.Lstat(p); err != nil {
		return
	}
	l.cfg.VarFiles = append(l.cfg.VarFiles, p)
	top := &hcl.Range{Filename: p, Start: hcl.InitialPos, End: hcl.InitialPos}
	if real := resolvePath(p); !within(real, l.realDir) {
		l.errorf(top, "Variable file outside the project", "%s is a link to %s, outside the project directory: sbx reads variables from a .env inside the project only, so that a cloned repository cannot feed it files of the host. Replace the link with a file.", p, real)
		return
	}
	data, err := os.ReadFile(p)
	if err != nil {
		l.errorf(top, "Cannot read variable file", "%s: %s. Fix its permissions, or remove it.", p, unwrapPathErr(err))
		return
	}
	l.cfg.Sources[p] = &hcl.File{Body: hcl.EmptyBody(), Bytes: data}
	entries, err := parseDotenvEntries(data)
	if err != nil {
		if de, ok := err.(*dotenvError); ok {
			top = lineRange(p, data, de.line)
		}
		l.errorf(top, "Invalid .env file", "%s. sbx reads variables from %s (KEY=VALUE lines, as Compose does); fix the line or remove it.", sentence(err), DotEnvFile)
		return
	}
	// Plain names first, so that SBX_VAR_ names win whatever the order of the lines.
	for _, prefixed := range []bool{false, true} {
		for _, e := range entries {
			name, isPrefixed := strings.CutPrefix(e.key, "SBX_VAR_")
			if isPrefixed != prefixed {
				continue
			}
			v, ok := l.vars[name]
			if !ok {
				if prefixed {
					l.warnf(lineRange(p, data, e.line), "Value for undeclared variable", "%s sets %s, but the Sandboxfile declares no variable %q.%s The value is ignored.", DotEnvFile, e.key, name, suggest(name, sortedKeys(l.vars)))
				}
				continue
			}
			from := fmt.Sprintf("from %s line %d", DotEnvFile, e.line)
			rng := lineRange(p, data, e.line)
			if val, ok := l.parseRaw(v, e.val, from, rng); ok {
				v.source = varSource{val: val, from: from, rng: rng}
				v.failed = false
			} else {
				v.failed = true
			}
		}
	}
}

// lineRange is the range of line n (1-based) of data, for diagnostics about files that are
// not HCL.
func lineRange(filename string, data []byte, n int) *hcl.Range {
	start := 0
	for i := 1; i < n && start < len(data); i++ {
		j := bytes.IndexByte(data[start:], '\n')
		if j < 0 {
			start = len(data)
			break
		}
		start += j + 1
	}
	end := start
	if j := bytes.IndexByte(data[start:], '\n'); j >= 0 {
		end = start + j
	} else {
		end = len(data)
	}
	cols := utf8.RuneCount(data[start:end])
	return &hcl.Range{Filename: filename,
		Start: hcl.Pos{Line: n, Column: 1, Byte: start},
		End:   hcl.Pos{Line: n, Column: cols + 1, Byte: end}}
}
