# Magic Castle's openstack module in miniature, for the sandbox cloud: every cloud object is a
# terraform_data resource whose provisioners create it (and delete it on destroy) through the
# OpenStack API, by running openstack_call.py with the OS_* credentials Terraform inherits.
#
# The resource addresses are a contract with MC Hub's plan summary: instance["<prefix><i>"],
# boot_volume["<instance>"], volume["<tag>-<name>"], floating_ip["<instance>"], guest_password.
# Every resource carries its input in triggers_replace too, because a changed input alone would
# only update terraform_data in place and the cloud object would silently drift from it.
#
# As Magic Castle's openstack provider does, every create makes a new object, and a destroy
# deletes only the object its resource made: servers and volumes carry the id of their
# terraform_data resource (MC_RESOURCE_ID) in their metadata; a floating IP is known by its
# address, which the module picks.

locals {
  hostname = "${lower(var.cluster_name)}.${lower(var.domain)}"

  # Root disk (GB) of the sandbox's flavors (sandbox/catalog.py): the p-flavors have none, the
  # c- and g-flavors 20 GB. Magic Castle boots an instance from a volume of disk_size (10 GB
  # unless the row sets it) when its flavor's disk is smaller; it asks the cloud, but a plan
  # here can't, so the rule is written down.
  flavor_root_disk_gb = {
    "p1-1.5gb" = 0
    "p2-3gb"   = 0
    "p4-6gb"   = 0
    "p8-12gb"  = 0
  }
  other_flavor_root_disk_gb = 20
  default_disk_size_gb      = 10

  instances = merge(concat([{}], flatten([
    for prefix, row in var.instances : [
      for i in range(lookup(row, "count", 1)) : {
        "${prefix}${i + 1}" = {
          prefix    = prefix
          flavor    = row.type
          image     = lookup(row, "image", var.image)
          tags      = row.tags
          disk_size = lookup(row, "disk_size", local.default_disk_size_gb)
        }
      }
    ]
  ]))...)

  instance_inputs = {
    for name, instance in local.instances : name => {
      name    = name
      flavor  = instance.flavor
      image   = instance.image
      tags    = instance.tags
      cluster = local.hostname
    }
  }

  boot_volume_inputs = {
    for name, instance in local.instances : name => {
      name    = "${var.cluster_name}-${name}-root"
      size    = instance.disk_size
      cluster = local.hostname
    }
    if instance.disk_size > lookup(local.flavor_root_disk_gb, instance.flavor, local.other_flavor_root_disk_gb)
  }

  volume_inputs = merge(concat([{}], [
    for tag, named in var.volumes : {
      for name, volume in named : "${tag}-${name}" => {
        name    = "${var.cluster_name}-${tag}-${name}"
        size    = volume.size
        cluster = local.hostname
      }
    }
  ])...)

  # A floating IP's address is derived from the hostname and instance name, so the module can
  # output it without reading anything back from the cloud (a provisioner's result is not
  # data). The range is the sandbox's Public-Network (sandbox/catalog.py), 100.64.0.0/10, whose
  # hosts from .0.2 on are allocatable: 2^20 hashed choices keep clusters from colliding.
  floating_ip_inputs = {
    for name, instance in local.instances : name => {
      name    = name
      address = cidrhost("100.64.0.0/10", 2 + parseint(substr(sha1("${local.hostname}/${name}"), 0, 5), 16))
      cluster = local.hostname
    }
    if contains(instance.tags, "public")
  }
}

resource "terraform_data" "boot_volume" {
  for_each         = local.boot_volume_inputs
  input            = each.value
  triggers_replace = each.value

  provisioner "local-exec" {
    interpreter = ["python3", "-I", "-S", "${abspath(path.module)}/openstack_call.py"]
    command     = "create-volume"
    environment = {
      MC_NAME        = self.input.name
      MC_SIZE        = self.input.size
      MC_CLUSTER     = self.input.cluster
      MC_IMAGE       = local.instances[each.key].image
      MC_RESOURCE_ID = self.id
    }
  }

  provisioner "local-exec" {
    when        = destroy
    interpreter = ["python3", "-I", "-S", "${abspath(path.module)}/openstack_call.py"]
    command     = "delete-volume"
    environment = {
      MC_NAME        = self.input.name
      MC_CLUSTER     = self.input.cluster
      MC_RESOURCE_ID = self.id
    }
  }
}

resource "terraform_data" "instance" {
  for_each         = local.instance_inputs
  input            = each.value
  triggers_replace = each.value
  depends_on       = [terraform_data.boot_volume]

  provisioner "local-exec" {
    interpreter = ["python3", "-I", "-S", "${abspath(path.module)}/openstack_call.py"]
    command     = "create-server"
    environment = {
      MC_NAME           = "${split(".", self.input.cluster)[0]}-${self.input.name}"
      MC_INSTANCE       = self.input.name
      MC_CLUSTER        = self.input.cluster
      MC_FLAVOR         = self.input.flavor
      MC_IMAGE          = self.input.image
      MC_TAGS           = join(",", self.input.tags)
      MC_BOOT_VOLUME    = try(local.boot_volume_inputs[each.key].name, "")
      MC_BOOT_VOLUME_ID = try(terraform_data.boot_volume[each.key].id, "")
      MC_RESOURCE_ID    = self.id
    }
  }

  provisioner "local-exec" {
    when        = destroy
    interpreter = ["python3", "-I", "-S", "${abspath(path.module)}/openstack_call.py"]
    command     = "delete-server"
    environment = {
      MC_NAME        = "${split(".", self.input.cluster)[0]}-${self.input.name}"
      MC_INSTANCE    = self.input.name
      MC_CLUSTER     = self.input.cluster
      MC_RESOURCE_ID = self.id
    }
  }
}

resource "terraform_data" "volume" {
  for_each         = local.volume_inputs
  input            = each.value
  triggers_replace = each.value

  provisioner "local-exec" {
    interpreter = ["python3", "-I", "-S", "${abspath(path.module)}/openstack_call.py"]
    command     = "create-volume"
    environment = {
      MC_NAME        = self.input.name
      MC_SIZE        = self.input.size
      MC_CLUSTER     = self.input.cluster
      MC_IMAGE       = ""
      MC_RESOURCE_ID = self.id
    }
  }

  provisioner "local-exec" {
    when        = destroy
    interpreter = ["python3", "-I", "-S", "${abspath(path.module)}/openstack_call.py"]
    command     = "delete-volume"
    environment = {
      MC_NAME        = self.input.name
      MC_CLUSTER     = self.input.cluster
      MC_RESOURCE_ID = self.id
    }
  }
}

resource "terraform_data" "floating_ip" {
  for_each         = local.floating_ip_inputs
  input            = each.value
  triggers_replace = each.value

  provisioner "local-exec" {
    interpreter = ["python3", "-I", "-S", "${abspath(path.module)}/openstack_call.py"]
    command     = "create-floating-ip"
    environment = {
      MC_ADDRESS  = self.input.address
      MC_INSTANCE = self.input.name
      MC_CLUSTER  = self.input.cluster
    }
  }

  provisioner "local-exec" {
    when        = destroy
    interpreter = ["python3", "-I", "-S", "${abspath(path.module)}/openstack_call.py"]
    command     = "delete-floating-ip"
    environment = {
      MC_ADDRESS  = self.input.address
      MC_INSTANCE = self.input.name
      MC_CLUSTER  = self.input.cluster
    }
  }
}

# No random provider here: a UUID drawn once and kept (ignore_changes) is the guest password.
resource "terraform_data" "guest_password" {
  count = nonsensitive(var.guest_passwd == "") ? 1 : 0
  input = sensitive(uuid())

  lifecycle {
    ignore_changes = [input]
  }
}
