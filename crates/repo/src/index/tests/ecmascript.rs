//! JavaScript, TypeScript and TSX: declarations and named function values.

use expect_test::expect;

use super::{check, check_signatures};
use crate::index::{Language, ParamKind, parse_symbols};

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

/// Positional, defaulted, rest and destructured parameters, in order; a
/// pattern is named by its source text.
#[test]
fn js_parameter_kinds() {
    check_signatures(
        Language::JavaScript,
        r#"
        function f(a, b = 1, ...rest, {x, y}) {}
        function g([first, ...others], {key} = {}, ...[head]) {}
        function none() {}
        "#,
        expect![[r#"
            function f (a:positional, b:positional=, rest:var_positional, {x, y}:pattern)
            function g ([first, ...others]:pattern, {key}:pattern=, [head]:var_positional)
            function none ()
        "#]],
    );
}

/// Functions bound to names take their parameters and `async` from the
/// function value: arrows with and without parentheses, function expressions,
/// CommonJS assignments.
#[test]
fn js_bound_functions() {
    check_signatures(
        Language::JavaScript,
        r#"
        export const handler = async (event, context = {}) => {};
        const square = x => x * x;
        const later = async x => x;
        const named = async => async;
        const legacy = function (a, b) {};
        module.exports.connect = async function (url, ...options) {};
        "#,
        expect![[r#"
            function handler async (event:positional, context:positional=)
            function square (x:positional)
            function later async (x:positional)
            function named (async:positional)
            function legacy (a:positional, b:positional)
            function connect async (url:positional, options:var_positional)
        "#]],
    );
}

/// Class methods, `static` members (methods and fields holding arrows),
/// async and generator methods; `extends` gives the base.
#[test]
fn js_class_members() {
    check_signatures(
        Language::JavaScript,
        r#"
        class Store extends mixin(Base, Events) {
          constructor(db, { cache = true } = {}) {}
          static async create(options) {}
          static handler = async (evt) => {};
          onClick = (e) => {};
          async *stream(from, to = Infinity) {}
          static() {}
          get size() {}
        }
        const Anonymous = class extends Store {};
        class Plain {}
        "#,
        expect![[r#"
            class Store bases=[mixin(Base, Events)]
            method Store.constructor (db:positional, { cache = true }:pattern=)
            method Store.create async static (options:positional)
            method Store.handler async static (evt:positional)
            method Store.onClick (e:positional)
            method Store.stream async (from:positional, to:positional=)
            method Store.static ()
            method Store.size ()
            class Anonymous bases=[Store]
            class Plain
        "#]],
    );
}

/// TS: typed, optional (`?`) and defaulted parameters; `this:` is not an
/// argument; constructor parameter properties keep their names.
#[test]
fn ts_parameters() {
    check_signatures(
        Language::TypeScript,
        r#"
        export function find(id: string, limit?: number, offset: number = 0, ...tags: string[]): void {}
        function onClick(this: HTMLElement, event: MouseEvent) {}
        class Repo<T> extends Base<T> implements Store<T>, Disposable {
          constructor(private readonly db: Db, public name?: string) {}
          static async open({ url }: Options, retries = 3): Promise<Repo<T>> {}
          abstract close(force?: boolean): void;
        }
        abstract class Job extends mixin(A, B) {
          abstract run(input: unknown): Promise<void>;
        }
        interface Reader {
          read(buffer: Uint8Array, offset?: number): number;
        }
        "#,
        expect![[r#"
            function find (id:positional, limit:positional=, offset:positional=, tags:var_positional)
            function onClick (event:positional)
            class Repo bases=[Base]
            method Repo.constructor (db:positional, name:positional=)
            method Repo.open async static ({ url }:pattern, retries:positional=)
            method Repo.close (force:positional=)
            class Job bases=[mixin(A, B)]
            method Job.run (input:positional)
            interface Reader
            method Reader.read (buffer:positional, offset:positional=)
        "#]],
    );
}

/// Broken parameter lists keep what tree-sitter recovered and never panic;
/// non-ASCII names come through as written.
#[test]
fn odd_parameter_lists() {
    check_signatures(
        Language::TypeScript,
        r#"
        function grüße(straße: string, 名前 = "x", ...ρest) {}
        function broken(a, = 2, ...) {}
        const after = (x, y,) => x;
        "#,
        expect![[r#"
            has_errors
            function grüße (straße:positional, 名前:positional=, ρest:var_positional)
            function broken (a:positional)
            function after (x:positional, y:positional)
        "#]],
    );
}

/// A generated function with thousands of parameters keeps them all, in order.
#[test]
fn huge_parameter_list() {
    let names: Vec<String> = (0..5000).map(|idx| format!("p{idx}")).collect();
    let source = format!("function wide({}, ...rest) {{}}\n", names.join(", "));
    let file = parse_symbols(Language::JavaScript, source.as_bytes());
    let wide = file
        .by_name("wide")
        .next()
        .expect("the function is indexed");
    assert_eq!(wide.params.len(), 5001);
    assert!(
        wide.params[..5000]
            .iter()
            .zip(&names)
            .all(|(param, name)| &param.name == name && param.kind == ParamKind::Positional)
    );
    assert_eq!(wide.params[5000].name, "rest");
    assert_eq!(wide.params[5000].kind, ParamKind::VarPositional);
}
