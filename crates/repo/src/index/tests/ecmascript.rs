//! JavaScript, TypeScript and TSX: declarations and named function values.

use expect_test::expect;

use super::check;
use crate::index::Language;

/// Class methods qualify by class; `this.x()` and `new X()` are calls.
#[test]
fn js_class_methods() {
    check(
        Language::JavaScript,
        r#"
        class Cart {
          constructor(items) {
            this.items = items;
          }
          total() {
            return this.items.reduce(add, 0) + shipping(new Rate());
          }
        }
        "#,
        expect![[r#"
            class Cart 1-8
              method Cart.constructor 2-4
              method Cart.total 5-7 calls=[Rate, reduce, shipping]
        "#]],
    );
}

/// Arrow functions and function expressions bound by `const` are functions,
/// starting at `export`.
#[test]
fn js_functions_bound_to_names() {
    check(
        Language::JavaScript,
        r#"
        export const handler = async (event) => {
          return respond(event.body);
        };
        const square = function (x) { return Math.pow(x, 2); };
        const answer = 42;
        "#,
        expect![[r#"
            function handler 1-3 calls=[respond]
            function square 4-4 calls=[pow]
        "#]],
    );
}

/// Function declarations, exported or not, including generators.
#[test]
fn js_function_declarations() {
    check(
        Language::JavaScript,
        r#"
        function parse(text) {
          return JSON.parse(text);
        }
        export function render(node) {
          parse(node.text);
        }
        export default function* ids() {}
        "#,
        expect![[r#"
            function parse 1-3 calls=[parse]
            function render 4-6 calls=[parse]
            function ids 7-7
        "#]],
    );
}

/// CommonJS exports and class-field arrows are named by their property.
#[test]
fn js_assigned_functions_and_class_fields() {
    check(
        Language::JavaScript,
        r#"
        module.exports.connect = function (url) {
          return open(url);
        };
        class Button {
          onClick = () => {
            this.props.onPress();
          };
          #secret() {}
        }
        "#,
        expect![[r#"
            function connect 1-3 calls=[open]
            class Button 4-9
              method Button.onClick 5-7 calls=[onPress]
              method Button.#secret 8-8
        "#]],
    );
}

/// Object-literal members are not symbols; callbacks' calls count for their function.
#[test]
fn js_object_literals_and_callbacks() {
    check(
        Language::JavaScript,
        r#"
        function routes(app) {
          app.get("/", (req, res) => res.send(index()));
          return { list() { return all(); } };
        }
        "#,
        expect![[r#"
            function routes 1-4 calls=[all, get, index, send]
        "#]],
    );
}

/// A nested function declaration keeps its calls to itself.
#[test]
fn js_nested_function() {
    check(
        Language::JavaScript,
        r#"
        function outer() {
          function inner() {
            return deep();
          }
          return inner();
        }
        "#,
        expect![[r#"
            function outer 1-6 calls=[inner]
              function outer.inner 2-4 calls=[deep]
        "#]],
    );
}

/// Interfaces and their method signatures, classes implementing them.
#[test]
fn ts_classes_and_interfaces() {
    check(
        Language::TypeScript,
        r#"
        export interface Store {
          get(key: string): Promise<string>;
          size: number;
        }
        export class MemoryStore implements Store {
          private data = new Map<string, string>();
          async get(key: string): Promise<string> {
            return this.data.get(key) ?? fallback<string>(key);
          }
        }
        "#,
        expect![[r#"
            interface Store 1-4
              method Store.get 2-2
            class MemoryStore 5-10
              method MemoryStore.get 7-9 calls=[fallback, get]
        "#]],
    );
}

/// Abstract classes, enums, namespaces and ambient modules.
#[test]
fn ts_abstract_enum_namespace() {
    check(
        Language::TypeScript,
        r#"
        abstract class Shape {
          abstract area(): number;
          describe() { return format(this.area()); }
        }
        enum Color { Red, Green }
        namespace Geometry {
          export function origin() {}
        }
        declare module "config" {
          function load(): void;
        }
        type Point = { x: number };
        "#,
        expect![[r#"
            class Shape 1-4
              method Shape.area 2-2
              method Shape.describe 3-3 calls=[area, format]
            enum Color 5-5
            module Geometry 6-8
              function Geometry.origin 7-7
            module config 9-11
        "#]],
    );
}

/// Decorators on classes and methods start their symbols.
#[test]
fn ts_decorators() {
    check(
        Language::TypeScript,
        r#"
        @Component({
          selector: "app",
        })
        export class AppComponent {
          @Input()
          title = "";

          @HostListener("click")
          onClick() {
            this.toggle();
          }
        }
        "#,
        expect![[r#"
            class AppComponent 1-12
              method AppComponent.onClick 8-11 calls=[toggle]
        "#]],
    );
}

/// TSX parses JSX; components are functions, and rendering `<Greeting />` calls it.
#[test]
fn tsx_components() {
    check(
        Language::Tsx,
        r#"
        export const Greeting = ({ name }: Props) => {
          const label = useMemo(() => format(name), [name]);
          return <div onClick={() => track("greet")}>{label}</div>;
        };
        export default function App() {
          return <Greeting name="x" />;
        }
        "#,
        expect![[r#"
            function Greeting 1-4 calls=[format, track, useMemo]
            function App 5-7 calls=[Greeting]
        "#]],
    );
}

/// A missing brace still yields the methods before it.
#[test]
fn broken_syntax_keeps_symbols() {
    check(
        Language::TypeScript,
        r#"
        class Api {
          fetch(url: string) {
            return request(url;
          }
          close() {}
        }
        "#,
        expect![[r#"
            has_errors
            class Api 1-6
              method Api.fetch 2-4 calls=[request]
              method Api.close 5-5
        "#]],
    );
}
