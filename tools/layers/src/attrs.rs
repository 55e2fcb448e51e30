//! Reading the attributes the checks care about: `#[cfg(test)]` (test code is left out of the
//! import rules, since tests may use helpers from anywhere), `#[path = "..."]` (where a module's
//! file is) and inner doc comments (what a module says it is for).
//!
//! Attributes are read by meaning, not by position: `#[cfg(test)] #[allow(...)] mod tests;` and
//! `#[allow(...)] #[cfg(test)] mod tests;` are the same test module.

use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, ExprLit, ImplItem, Item, Lit, Meta, Token, TraitItem};

/// Whether the attributes make the item exist only in test builds: `#[cfg(test)]`, or a `cfg`
/// whose predicate cannot hold without `test` (`all(test, unix)`, `any(all(test, x), test)`).
/// `any(test, feature = "x")` and `not(test)` are not test-only: a normal build may have them.
pub fn is_test_only(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|attr| {
        if !attr.path().is_ident("cfg") {
            return false;
        }
        match attr.parse_args::<Meta>() {
            Ok(predicate) => requires_test(&predicate),
            // A predicate syn cannot read is not one we can call test-only.
            Err(_) => false,
        }
    })
}

/// Whether a `cfg` predicate implies `test`.
fn requires_test(predicate: &Meta) -> bool {
    match predicate {
        Meta::Path(path) => path.is_ident("test"),
        Meta::List(list) => {
            let Ok(parts) = list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
            else {
                return false;
            };
            if list.path.is_ident("all") {
                parts.iter().any(requires_test)
            } else if list.path.is_ident("any") {
                !parts.is_empty() && parts.iter().all(requires_test)
            } else {
                // `not(...)` and anything else.
                false
            }
        }
        Meta::NameValue(_) => false,
    }
}

/// The value of a `#[path = "..."]` attribute, if the item has one.
pub fn path_attr(attrs: &[Attribute]) -> Option<String> {
    attrs.iter().find_map(|attr| match &attr.meta {
        Meta::NameValue(nv) if nv.path.is_ident("path") => match &nv.value {
            Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            }) => Some(s.value()),
            _ => None,
        },
        _ => None,
    })
}

/// The text of the inner doc comments (`//!`, `/*! */`, `#![doc = "..."]`) among `attrs`, joined
/// by newlines. A `#![doc = include_str!(...)]` counts as documentation too, with placeholder text.
pub fn inner_doc_text(attrs: &[Attribute]) -> String {
    let mut text = String::new();
    for attr in attrs {
        if !matches!(attr.style, syn::AttrStyle::Inner(_)) || !attr.path().is_ident("doc") {
            continue;
        }
        if let Meta::NameValue(nv) = &attr.meta {
            match &nv.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => text.push_str(&s.value()),
                Expr::Macro(_) => text.push_str("(included)"),
                _ => {}
            }
            text.push('\n');
        }
    }
    text
}

/// `&x.attrs` of whichever of the listed variants of a syn enum `node` is, and no attributes
/// for any other (tokens syn left unparsed): syn has no accessor for them on its enums.
macro_rules! variant_attrs {
    ($node:expr, $enum:ident::{ $($variant:ident),* $(,)? }) => {
        match $node {
            $($enum::$variant(inner) => &inner.attrs,)*
            _ => &[],
        }
    };
}

/// The attributes of any item.
pub fn item_attrs(item: &Item) -> &[Attribute] {
    variant_attrs!(item, Item::{
        Const, Enum, ExternCrate, Fn, ForeignMod, Impl, Macro, Mod, Static, Struct, Trait,
        TraitAlias, Type, Union, Use,
    })
}

/// The attributes of an item in an `impl` block.
pub fn impl_item_attrs(item: &ImplItem) -> &[Attribute] {
    variant_attrs!(item, ImplItem::{Const, Fn, Type, Macro})
}

/// The attributes of an item in a trait.
pub fn trait_item_attrs(item: &TraitItem) -> &[Attribute] {
    variant_attrs!(item, TraitItem::{Const, Fn, Type, Macro})
}

/// The attributes of any expression; `cfg(test)` can sit on a statement's expression.
pub fn expr_attrs(expr: &Expr) -> &[Attribute] {
    variant_attrs!(expr, Expr::{
        Array, Assign, Async, Await, Binary, Block, Break, Call, Cast, Closure, Const, Continue,
        Field, ForLoop, Group, If, Index, Infer, Let, Lit, Loop, Macro, Match, MethodCall, Paren,
        Path, Range, RawAddr, Reference, Repeat, Return, Struct, Try, TryBlock, Tuple, Unary,
        Unsafe, While, Yield,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(src: &str) -> Item {
        match syn::parse_str::<Item>(src) {
            Ok(item) => item,
            Err(err) => panic!("bad fixture {src}: {err}"),
        }
    }

    fn test_only(src: &str) -> bool {
        is_test_only(item_attrs(&item(src)))
    }

    #[test]
    fn test_only_predicates() {
        assert!(test_only("#[cfg(test)] mod t;"));
        assert!(test_only(
            "#[allow(clippy::unwrap_used)] #[cfg(test)] mod t;"
        ));
        assert!(test_only(
            "#[cfg(test)] #[allow(clippy::unwrap_used)] mod t;"
        ));
        assert!(test_only("#[cfg(all(unix, test))] fn f() {}"));
        assert!(test_only("#[cfg(any(test, all(test, unix)))] fn f() {}"));
        assert!(!test_only("#[cfg(any(test, feature = \"x\"))] fn f() {}"));
        assert!(!test_only("#[cfg(not(test))] fn f() {}"));
        assert!(!test_only("#[cfg(unix)] fn f() {}"));
        assert!(!test_only("#[cfg_attr(test, allow(dead_code))] fn f() {}"));
    }

    #[test]
    fn path_attribute() {
        let decl = item("#[cfg(test)] #[path = \"x_tests.rs\"] mod tests;");
        assert_eq!(path_attr(item_attrs(&decl)), Some("x_tests.rs".to_owned()));
        assert_eq!(path_attr(item_attrs(&item("mod tests;"))), None);
    }

    #[test]
    fn inner_docs() {
        let file =
            match syn::parse_file("//! What this is for.\n#![forbid(unsafe_code)]\nfn f() {}") {
                Ok(file) => file,
                Err(err) => panic!("{err}"),
            };
        assert_eq!(inner_doc_text(&file.attrs).trim(), "What this is for.");
        let file = match syn::parse_file("// Not a doc comment.\n/// Docs of f.\nfn f() {}") {
            Ok(file) => file,
            Err(err) => panic!("{err}"),
        };
        assert_eq!(inner_doc_text(&file.attrs), "");
    }
}
