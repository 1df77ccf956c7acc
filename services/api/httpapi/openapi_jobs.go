package httpapi

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3gen"

	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/layout"
)

// The job schemas of the OpenAPI document are generated from the Go types
// of the job contract (package jobspec, jobs.Record) with kin-openapi's
// openapi3gen: per kind the params (its Args type) and the result (its
// Result type), the request bodies of the submit routes, and the job
// record, one variant per kind discriminated by "kind". Every struct is a
// closed object whose required properties are its fields without
// omitempty; slices and maps may be null (as Go encodes nil ones).

// bodyExcluded lists, by kind, the Args fields a request body may not set:
// they come from the path (an archive name) or only from the scheduler.
// decodeArgs refuses them and the request body schemas leave them out.
var bodyExcluded = map[string][]string{
	jobs.KindBackupCreate: {"verify_after", "schedule"},
	jobs.KindBackupVerify: {"name"},
	jobs.KindRestore:      {"archive"},
}

// jobEnums are the accepted values of string fields (and of the items of
// string arrays) of the job contract's types, by JSON field name, from the
// constants that define them.
var jobEnums = map[string][]string{
	"components":      backupfmt.Components,
	"collection_name": layout.Collections,
	"outcome":         {backupstore.OutcomePassed, backupstore.OutcomeFailed},
	"mode":            {jobspec.InitModeJob, jobspec.InitModeOnce},
}

// schemaMaxLength bounds string fields, by JSON field name.
var schemaMaxLength = map[string]uint64{"note": jobspec.MaxBackupNote}

// typeName is the component name of a Go value's type.
func typeName(v any) string { return reflect.TypeOf(v).Name() }

// ResultSchemas names, per job kind, the component schema of the result
// a job of that kind carries (JobRecord.result): its jobspec Result type.
var ResultSchemas = func() map[string]string {
	out := make(map[string]string, len(jobspec.Specs))
	for _, s := range jobspec.Specs {
		out[s.Kind()] = typeName(s.Result)
	}
	return out
}()

// bodySchema is the component name of kind's request body: its Args type,
// or "<name>Request" when the body may not set every field of it.
func bodySchema(kind string) string {
	for _, s := range jobspec.Specs {
		if s.Kind() != kind {
			continue
		}
		name := typeName(s.Args)
		if len(bodyExcluded[kind]) > 0 {
			name = strings.TrimSuffix(name, "Args") + "Request"
		}
		return name
	}
	panic("httpapi: no job kind " + kind)
}

var timeType = reflect.TypeFor[time.Time]()

// customizer is the openapi3gen customizer that makes the generated
// schemas say what the types' JSON does (see above), with enums the
// accepted values of string fields by name.
func customizer(enums map[string][]string) openapi3gen.SchemaCustomizerFn {
	return func(name string, t reflect.Type, tag reflect.StructTag, s *openapi3.Schema) error {
		return customizeSchema(enums, name, t, s)
	}
}

func customizeSchema(enums map[string][]string, name string, t reflect.Type, s *openapi3.Schema) error {
	switch t.Kind() {
	case reflect.Struct:
		if t == timeType {
			return nil
		}
		s.Type = &openapi3.Types{openapi3.TypeObject}
		if s.Properties == nil {
			s.Properties = openapi3.Schemas{}
		}
		s.AdditionalProperties = openapi3.AdditionalProperties{Has: openapi3.Ptr(false)}
		s.Required = requiredFields(t)
	case reflect.Slice, reflect.Map:
		s.Nullable = true
	case reflect.String:
		if vals, ok := enums[name]; ok {
			for _, v := range vals {
				s.Enum = append(s.Enum, v)
			}
		}
		if n, ok := schemaMaxLength[name]; ok {
			s.MaxLength = openapi3.Ptr(n)
		}
	}
	return nil
}

// requiredFields are the JSON names of t's fields without omitempty,
// embedded structs' fields included, as encoding/json writes them.
func requiredFields(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		switch {
		case tag == "-" || !f.IsExported() && !f.Anonymous:
			continue
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			out = append(out, requiredFields(f.Type)...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		if !strings.Contains(","+opts+",", ",omitempty,") {
			out = append(out, name)
		}
	}
	return out
}

// generateSchema is the schema of v's type (enums: see customizer),
// without the properties in exclude.
func generateSchema(v any, enums map[string][]string, exclude ...string) (schema, error) {
	ref, err := openapi3gen.NewSchemaRefForValue(v, nil, openapi3gen.SchemaCustomizer(customizer(enums)))
	if err != nil {
		return nil, fmt.Errorf("schema of %T: %w", v, err)
	}
	b, err := json.Marshal(ref.Value)
	if err != nil {
		return nil, fmt.Errorf("schema of %T: %w", v, err)
	}
	var out schema
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("schema of %T: %w", v, err)
	}
	if len(exclude) > 0 {
		props, _ := out["properties"].(map[string]any)
		for _, p := range exclude {
			delete(props, p)
		}
		if req, ok := out["required"].([]any); ok {
			var keep []any
			for _, r := range req {
				if _, ok := props[r.(string)]; ok {
					keep = append(keep, r)
				}
			}
			out["required"] = keep
			if len(keep) == 0 {
				delete(out, "required")
			}
		}
	}
	return out, nil
}

// jobSchemas are the generated components: per kind its Args, Result,
// request body and job record variant ("<name>Job"), plus JobError and
// JobRecord (oneOf the variants, discriminated by kind).
func jobSchemas() (map[string]schema, error) {
	out := map[string]schema{}
	add := func(name string, v any, exclude ...string) error {
		if _, dup := out[name]; dup {
			return fmt.Errorf("component %s generated twice", name)
		}
		sc, err := generateSchema(v, jobEnums, exclude...)
		out[name] = sc
		return err
	}
	if err := add("JobError", jobs.Error{}); err != nil {
		return nil, err
	}
	var variants []any
	mapping := map[string]any{}
	for _, s := range jobspec.Specs {
		kind, args, result := s.Kind(), typeName(s.Args), typeName(s.Result)
		if err := add(args, s.Args); err != nil {
			return nil, err
		}
		if err := add(result, s.Result); err != nil {
			return nil, err
		}
		if body := bodySchema(kind); body != args {
			if err := add(body, s.Args, bodyExcluded[kind]...); err != nil {
				return nil, err
			}
		}
		rec, err := generateSchema(jobs.Record{}, nil)
		if err != nil {
			return nil, err
		}
		props := rec["properties"].(map[string]any)
		props["kind"] = enum(kind)
		props["state"] = enum(jobStates...)
		props["progress"] = schema{"type": "integer", "minimum": 0, "maximum": 100}
		props["params"] = ref(args)
		props["result"] = schema{"description": "the result; a failed job may carry a partial one", "allOf": []any{ref(result)}}
		props["error"] = ref("JobError")
		variant := strings.TrimSuffix(args, "Args") + "Job"
		rec["description"] = "the record of a " + kind + " job"
		out[variant] = rec
		variants = append(variants, ref(variant))
		mapping[kind] = "#/components/schemas/" + variant
	}
	out["JobRecord"] = schema{
		"description":   "a job record: its params and result are those of its kind",
		"oneOf":         variants,
		"discriminator": schema{"propertyName": "kind", "mapping": mapping},
	}
	return out, nil
}
