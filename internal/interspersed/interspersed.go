// Package interspersed parses command lines whose flags may come before,
// between and after positional arguments, as atg and atg-server accept
// them ("atg ops get ID --format json", "atg-server keys revoke ID --file F").
//
// The standard flag package stops at the first positional argument;
// Parse resumes after each one.
package interspersed

import "flag"

// Parse parses args with fs, letting flags come before, between and after
// positional arguments; "--" ends the flags and everything after it is
// positional. It returns the positional arguments in order, or the error of
// fs.Parse (flag.ErrHelp for -h), which fs has already reported to its
// output as the flag package does.
func Parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}
