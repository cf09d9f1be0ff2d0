# A miniature of the sandbox module's resource contract (see mchub/terraform/plan.py): one
# terraform_data per cloud object, its attributes in `input`, and the same values in
# triggers_replace so that any change recreates the object, as it does in the sandbox.

variable "instances" {
  type = map(object({ flavor = string, tags = list(string), disk_size = optional(number, 0) }))
}

variable "volumes" {
  type = map(number)
}

resource "terraform_data" "boot_volume" {
  for_each         = { for name, i in var.instances : name => { name = "demo-${name}-root", size = i.disk_size } if i.disk_size > 0 }
  input            = each.value
  triggers_replace = each.value
}

resource "terraform_data" "instance" {
  for_each         = { for name, i in var.instances : name => { name = name, flavor = i.flavor, image = "Rocky-9", tags = i.tags, cluster = "demo.sandbox.mchub.dev" } }
  input            = each.value
  triggers_replace = each.value
  depends_on       = [terraform_data.boot_volume]
}

resource "terraform_data" "volume" {
  for_each         = { for name, size in var.volumes : name => { name = "demo-${name}", size = size } }
  input            = each.value
  triggers_replace = each.value
}

resource "terraform_data" "floating_ip" {
  for_each         = { for name, i in var.instances : name => { name = name } if contains(i.tags, "public") }
  input            = each.value
  triggers_replace = each.value
}

output "instances" {
  value = { for name, i in terraform_data.instance : name => i.output.flavor }
}
