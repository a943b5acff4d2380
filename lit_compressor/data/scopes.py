"""Which identifier of a Java or C function names which variable: block scopes over a tree-sitter tree.

:func:`resolve` walks one function and binds every identifier that reads or writes a variable to its
declaration — a parameter, a local (of the function itself, lambdas included) or ``other`` (a declaration
the renamings leave alone: fields and variables of a class declared inside the function, C enumerators,
local prototypes). Identifiers that name no variable are never bound: method names of calls, field names
after ``.``/``->``, labels, annotations, type names, macro names of ``#ifdef``. A name that resolves to no
declaration is a field, a global, a function or a macro, and keeps its name. ERROR subtrees are not
entered; every word inside one is reported, so that a renaming can leave such a name alone everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import tree_sitter

from lit_compressor.data.names import words
from lit_compressor.data.parsing import iter_nodes

Kind = Literal["parameter", "local", "other"]
FUNCTION_NODES = {"java": ("method_declaration", "constructor_declaration"), "c": ("function_definition",)}


@dataclass(eq=False)
class Declaration:
    """One declared variable: where its name is declared (``sites``) and where it is used (``uses``)."""

    name: str
    kind: Kind
    sites: list[tree_sitter.Node] = field(default_factory=list)
    uses: list[tree_sitter.Node] = field(default_factory=list)

    @property
    def nodes(self) -> list[tree_sitter.Node]:
        return self.sites + self.uses


@dataclass
class Resolution:
    declarations: list[Declaration]
    unresolved: list[tree_sitter.Node]
    """Identifiers read as variables that no declaration of the function binds (fields, globals, macros)."""
    opaque_words: set[str]
    """Words of the subtrees left unresolved (ERROR subtrees, preprocessor directives, labels, prototypes,
    casts' types, type definitions) and of type names: what they name cannot be told, so no renaming touches
    them."""


def text(node: tree_sitter.Node) -> str:
    return node.text.decode("utf-8", errors="replace")


def function_node(root: tree_sitter.Node, language: str) -> tree_sitter.Node | None:
    """The outermost function declaration under ``root`` that is not inside an ERROR subtree."""
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "ERROR":
            continue
        if node.type in FUNCTION_NODES[language]:
            return node
        stack.extend(reversed(node.children))
    return None


class _Walker:
    """Binds identifiers to declarations through a stack of scopes (name -> declaration)."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Declaration]] = []
        self.declarations: list[Declaration] = []
        self.unresolved: list[tree_sitter.Node] = []
        self.opaque_words: set[str] = set()
        self.nested = 0  # depth of class bodies declared inside the function (Java)

    # scopes
    def push(self) -> None:
        self.scopes.append({})

    def pop(self) -> None:
        self.scopes.pop()

    def declare(self, name_node: tree_sitter.Node, kind: Kind) -> Declaration:
        if self.nested:
            kind = "other"
        declaration = Declaration(text(name_node), kind, [name_node])
        self.declarations.append(declaration)
        self.scopes[-1][declaration.name] = declaration
        return declaration

    def reference(self, node: tree_sitter.Node) -> None:
        name = text(node)
        for scope in reversed(self.scopes):
            if name in scope:
                scope[name].uses.append(node)
                return
        self.unresolved.append(node)

    # walking
    def visit(self, node: tree_sitter.Node | None) -> None:
        if node is None:
            return
        if node.type == "ERROR":
            self.opaque(node)
            return
        handler = getattr(self, "on_" + node.type, None)
        if handler is not None:
            handler(node)
        elif node.type == "identifier":
            self.reference(node)
        else:
            self.visit_children(node)

    def opaque(self, node: tree_sitter.Node | None) -> None:
        """A subtree left unresolved: the names in it are renamed nowhere, lest a use in it be missed."""
        if node is not None:
            self.opaque_words |= words(text(node))

    def visit_children(self, node: tree_sitter.Node) -> None:
        for child in node.children:
            self.visit(child)

    def scoped(self, node: tree_sitter.Node) -> None:
        self.push()
        self.visit_children(node)
        self.pop()


class JavaWalker(_Walker):
    """Java: locals may not shadow locals, so a name in scope is one variable; class bodies nest scopes."""

    def walk_function(self, node: tree_sitter.Node) -> None:
        self.push()
        self.declare_parameters(node.child_by_field_name("parameters"), "parameter")
        self.visit(node.child_by_field_name("body"))
        self.pop()

    def declare_parameters(self, parameters: tree_sitter.Node | None, kind: Kind) -> None:
        if parameters is None:
            return
        if parameters.type == "identifier":  # x -> ...
            self.declare(parameters, kind)
            return
        for parameter in parameters.named_children:
            if parameter.type == "identifier":  # (x, y) -> ...
                self.declare(parameter, kind)
            elif parameter.type in ("formal_parameter", "spread_parameter"):
                declarator = next((c for c in parameter.named_children if c.type == "variable_declarator"), None)
                name = (declarator or parameter).child_by_field_name("name")
                if name is not None:
                    self.declare(name, kind)

    def on_method_declaration(self, node: tree_sitter.Node) -> None:  # a method of a nested class
        self.walk_function(node)

    on_constructor_declaration = on_method_declaration

    def on_block(self, node: tree_sitter.Node) -> None:
        self.scoped(node)

    on_constructor_body = on_switch_block = on_for_statement = on_block

    def on_local_variable_declaration(self, node: tree_sitter.Node) -> None:
        for declarator in node.children_by_field_name("declarator"):
            self.declare(declarator.child_by_field_name("name"), "local")
            self.visit(declarator.child_by_field_name("value"))

    def on_enhanced_for_statement(self, node: tree_sitter.Node) -> None:
        self.push()
        self.visit(node.child_by_field_name("value"))  # evaluated before the loop variable exists
        self.declare(node.child_by_field_name("name"), "local")
        self.visit(node.child_by_field_name("body"))
        self.pop()

    def on_catch_clause(self, node: tree_sitter.Node) -> None:
        self.push()
        for child in node.named_children:
            if child.type == "catch_formal_parameter":
                self.declare(child.child_by_field_name("name"), "local")
            else:
                self.visit(child)
        self.pop()

    def on_try_with_resources_statement(self, node: tree_sitter.Node) -> None:
        self.push()  # resources are in scope in the try block only, not in catch or finally
        for resource in node.child_by_field_name("resources").named_children:
            if resource.child_by_field_name("name") is not None:
                self.visit(resource.child_by_field_name("value"))
                self.declare(resource.child_by_field_name("name"), "local")
            else:
                self.visit_children(resource)
        self.visit(node.child_by_field_name("body"))
        self.pop()
        for child in node.named_children:
            if child.type in ("catch_clause", "finally_clause"):
                self.visit(child)

    def on_lambda_expression(self, node: tree_sitter.Node) -> None:
        self.push()
        self.declare_parameters(node.child_by_field_name("parameters"), "local")
        self.visit(node.child_by_field_name("body"))
        self.pop()

    def on_instanceof_expression(self, node: tree_sitter.Node) -> None:
        self.visit(node.child_by_field_name("left"))
        if node.child_by_field_name("name") is not None:  # `o instanceof String s` (Java 16)
            self.declare(node.child_by_field_name("name"), "local")

    def on_class_body(self, node: tree_sitter.Node) -> None:
        """An anonymous or local class: its fields are in scope in the whole body; nothing in it is renamed."""
        self.nested += 1
        self.push()
        for member in node.named_children:
            if member.type in ("field_declaration", "constant_declaration"):
                for declarator in member.children_by_field_name("declarator"):
                    self.declare(declarator.child_by_field_name("name"), "other")
        for member in node.named_children:
            if member.type in ("field_declaration", "constant_declaration"):
                for declarator in member.children_by_field_name("declarator"):
                    self.visit(declarator.child_by_field_name("value"))
            else:
                self.visit(member)
        self.pop()
        self.nested -= 1

    on_enum_body = on_interface_body = on_class_body

    def on_class_declaration(self, node: tree_sitter.Node) -> None:
        self.visit(node.child_by_field_name("body"))

    on_enum_declaration = on_interface_declaration = on_record_declaration = on_class_declaration

    def on_enum_constant(self, node: tree_sitter.Node) -> None:
        for child in node.named_children:
            if child.type != "identifier":
                self.visit(child)

    def on_field_access(self, node: tree_sitter.Node) -> None:
        self.visit(node.child_by_field_name("object"))  # not `field`: a member of another object

    def on_method_invocation(self, node: tree_sitter.Node) -> None:
        self.visit(node.child_by_field_name("object"))  # not `name`: a method, not a variable
        self.visit(node.child_by_field_name("arguments"))

    def on_method_reference(self, node: tree_sitter.Node) -> None:
        self.visit(node.children[0])  # `list::add`: `list` may be a variable, `add` is a method

    def on_labeled_statement(self, node: tree_sitter.Node) -> None:
        for child in node.named_children[1:]:
            self.visit(child)

    def on_break_statement(self, node: tree_sitter.Node) -> None:
        self.opaque(node)  # its identifier is a label

    on_continue_statement = on_break_statement
    on_annotation = on_marker_annotation = on_scoped_identifier = on_break_statement  # names of types/packages


class CWalker(_Walker):
    """C: a declaration's scope runs from its declarator to the end of its block; inner blocks may shadow."""

    def walk_function(self, node: tree_sitter.Node) -> None:
        self.push()
        function = declarator_function(node.child_by_field_name("declarator"))
        parameters = function.child_by_field_name("parameters") if function is not None else None
        declared: dict[str, Declaration] = {}
        for parameter in parameters.named_children if parameters is not None else ():
            if parameter.type == "identifier":  # K&R: f(a, b) int a; char *b; { ... }
                declared[text(parameter)] = self.declare(parameter, "parameter")
            elif parameter.type == "parameter_declaration":
                name = declarator_name(parameter.child_by_field_name("declarator"))
                if name is not None:
                    declared[text(name)] = self.declare(name, "parameter")
                self.visit_sizes(parameter.child_by_field_name("declarator"), name)
        for old_style in node.children:  # K&R parameter declarations: more sites of the same parameters
            if old_style.type == "declaration":
                for declarator in old_style.children_by_field_name("declarator"):
                    name = declarator_name(declarator)
                    if name is not None and text(name) in declared:
                        declared[text(name)].sites.append(name)
        self.visit(node.child_by_field_name("body"))
        self.pop()

    def visit_sizes(self, declarator: tree_sitter.Node | None, name: tree_sitter.Node | None) -> None:
        """The expressions inside a declarator (array sizes), not its name nor a prototype's parameters."""
        if declarator is None:
            return
        for node in declarator.children:
            if node.type == "parameter_list" or (name is not None and node == name):
                continue
            if node.type in ("array_declarator", "pointer_declarator", "parenthesized_declarator",
                             "function_declarator", "attributed_declarator"):
                self.visit_sizes(node, name)
            elif node.is_named and node.type not in ("type_qualifier", "ms_pointer_modifier", "attribute_specifier"):
                self.visit(node)

    def on_compound_statement(self, node: tree_sitter.Node) -> None:
        self.scoped(node)

    on_for_statement = on_compound_statement

    def on_declaration(self, node: tree_sitter.Node) -> None:
        self.visit(node.child_by_field_name("type"))  # an enum's enumerators, a typeof's expression
        for declarator in node.children_by_field_name("declarator"):
            name = declarator_name(declarator)
            # `uint8_t av_unused end_bit;`: an unexpanded macro read as the name, the real name an ERROR
            misread = any(child.type == "ERROR" for child in (*node.children, *declarator.children))
            value = None
            if declarator.type == "init_declarator":
                value = declarator.child_by_field_name("value")
                declarator = declarator.child_by_field_name("declarator")
            self.visit_sizes(declarator, name)
            if name is not None:
                prototype = any(n.type == "function_declarator" for n in iter_nodes(declarator))
                self.declare(name, "other" if prototype or misread else "local")
            self.visit(value)  # after the name: `int n = sizeof n;` reads the new n

    def on_enumerator(self, node: tree_sitter.Node) -> None:
        self.visit(node.child_by_field_name("value"))
        self.declare(node.child_by_field_name("name"), "other")

    def on_field_expression(self, node: tree_sitter.Node) -> None:
        self.visit(node.child_by_field_name("argument"))  # not `field`: a member name

    def on_parameter_declaration(self, node: tree_sitter.Node) -> None:
        self.opaque(node)  # a prototype's parameter (in a cast or a function-pointer type) is not a variable

    def on_cast_expression(self, node: tree_sitter.Node) -> None:
        self.opaque(node.child_by_field_name("type"))
        self.visit(node.child_by_field_name("value"))

    def on_preproc_ifdef(self, node: tree_sitter.Node) -> None:
        self.opaque(node.child_by_field_name("name"))  # the macro tested is no variable
        for child in node.named_children:
            if child != node.child_by_field_name("name"):
                self.visit(child)

    def on_preproc_if(self, node: tree_sitter.Node) -> None:
        self.opaque(node.child_by_field_name("condition"))
        for child in node.named_children:
            if child != node.child_by_field_name("condition"):
                self.visit(child)

    on_preproc_elif = on_preproc_if

    def on_preproc_def(self, node: tree_sitter.Node) -> None:
        self.opaque(node)  # a macro body may use any local by name

    on_preproc_function_def = on_preproc_call = on_preproc_def

    def on_type_definition(self, node: tree_sitter.Node) -> None:
        self.opaque(node)

    on_attribute_specifier = on_macro_type_specifier = on_type_definition


WALKERS = {"java": JavaWalker, "c": CWalker}


def declarator_name(declarator: tree_sitter.Node | None) -> tree_sitter.Node | None:
    """The identifier a C declarator declares (``*p``, ``a[n]``, ``(*cb)(int)``, ``x = 1``), if any."""
    while declarator is not None and declarator.type != "identifier":
        if declarator.type not in ("pointer_declarator", "array_declarator", "parenthesized_declarator",
                                   "function_declarator", "attributed_declarator", "init_declarator"):
            return None
        inner = declarator.child_by_field_name("declarator")
        if inner is None and declarator.type == "parenthesized_declarator":
            inner = next((c for c in declarator.named_children), None)
        declarator = inner
    return declarator


def declarator_function(declarator: tree_sitter.Node | None) -> tree_sitter.Node | None:
    """The function declarator of a C function definition's declarator (``*f(int a)`` included)."""
    while declarator is not None and declarator.type != "function_declarator":
        declarator = declarator.child_by_field_name("declarator")
    return declarator


def resolve(function: tree_sitter.Node, language: str) -> Resolution:
    """Bind the identifiers of ``function`` (a node of :data:`FUNCTION_NODES`) to its declarations."""
    walker = WALKERS[language]()
    walker.walk_function(function)
    # a variable's name read as a type name is a misparse (an unexpanded macro): leave that name alone; C's
    # struct, union and enum tags live apart from variables (`struct list *list`)
    walker.opaque_words |= {text(n) for n in iter_nodes(function) if n.type == "type_identifier"
                            and n.parent.type not in ("struct_specifier", "union_specifier", "enum_specifier")}
    return Resolution(walker.declarations, walker.unresolved, walker.opaque_words)
