//! Go: functions, receivers, types.

use expect_test::expect;

use super::check;
use crate::index::Language;

/// Pointer and value receivers both qualify by the bare type.
#[test]
fn pointer_and_value_receivers() {
    check(
        Language::Go,
        r#"
        package server

        type Server struct {
            addr string
        }

        func (s *Server) Serve() error {
            return s.listen(net.Dial("tcp", s.addr))
        }

        func (s Server) Addr() string { return s.addr }
        "#,
        expect![[r#"
            struct Server 3-5
            method Server.Serve 7-9 calls=[Dial, listen]
            method Server.Addr 11-11
        "#]],
    );
}

/// Generic receivers drop their type parameters; generic calls name the function.
#[test]
fn generic_receivers() {
    check(
        Language::Go,
        r#"
        package list

        func (l *List[T]) Push(v T) {
            l.items = appendAll[T](l.items, v)
        }
        "#,
        expect![[r#"
            method List.Push 3-5 calls=[appendAll]
        "#]],
    );
}

/// Plain functions; func literals' calls count for the enclosing function.
#[test]
fn functions_and_literals() {
    check(
        Language::Go,
        r#"
        package main

        func main() {
            go func() {
                worker()
            }()
            defer cleanup()
        }
        "#,
        expect![[r#"
            function main 3-8 calls=[cleanup, worker]
        "#]],
    );
}

/// Interfaces list their methods; constants and aliases.
#[test]
fn interfaces_and_constants() {
    check(
        Language::Go,
        r#"
        package store

        type Store interface {
            Get(key string) (string, error)
        }

        type ID = string

        const (
            Primary = iota
            Replica
        )
        "#,
        expect![[r#"
            interface Store 3-5
              method Store.Get 4-4
            constant Primary 10-10
            constant Replica 11-11
        "#]],
    );
}

/// An unclosed function body keeps the function before it.
#[test]
fn broken_syntax_keeps_symbols() {
    check(
        Language::Go,
        r#"
        package p

        func ok() {}

        func broken( {
        "#,
        expect![[r#"
            has_errors
            function ok 3-3
        "#]],
    );
}
